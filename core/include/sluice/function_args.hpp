// Function arguments: how the bound arguments of a function task travel with its
// TaskSpec (TaskSpec::arguments), and how a Value is packed into a compact byte string.
// An argument is a literal Value, the result of one parent task, or the results of
// several parents gathered into one list. Parents are named by their position in
// TaskSpec::after (in-process backends) and by their task name (worker processes find
// the parent's artifact in SLUICE_INPUT_<NAME>).
//
// The encoded form is printable (base64 of a small binary format), so it can be a
// command-line argument of the worker and a string in the stored definition.
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/error.hpp"
#include "sluice/value.hpp"

namespace sluice {

struct ArgumentRef {
  std::uint32_t position = 0;  // index into the task's `after`
  std::string parent;          // that parent's task name
};

struct Argument {
  enum class Kind : std::uint8_t { kValue, kResult, kGather };
  Kind kind = Kind::kValue;
  Value value;                    // kValue
  std::vector<ArgumentRef> refs;  // kResult: exactly one; kGather: any number, in order
};

// The key a function task's result is stored under in its artifact.
inline constexpr const char* kResultKey = "result";

std::string encode_arguments(const std::vector<Argument>& args);
// Fails with kInvalidInput when `text` was not made by encode_arguments().
Expected<std::vector<Argument>> decode_arguments(std::string_view text);

// A Value as bytes and back (any Value, arrays included). decode fails with
// kInvalidInput on truncated or foreign bytes.
void append_value_bytes(const Value& v, std::string& out);
Expected<Value> value_from_bytes(std::string_view bytes);

std::string base64_encode(std::string_view bytes);
Expected<std::string> base64_decode(std::string_view text);

}  // namespace sluice
