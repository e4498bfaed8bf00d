// Values as JSON and as text: `sluice put` and a task's results file (SLUICE_RESULTS)
// parse what users write, `sluice get`/`results` print what artifacts hold.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "sluice/error.hpp"
#include "sluice/value.hpp"

namespace sluice {

// Arrays become nested JSON arrays; maps objects; lists arrays; null null.
nlohmann::json to_json(const Value& v);

// JSON to a Value: numbers stay int64 or float64; a (nested, rectangular) array of
// numbers becomes an NdArray (int64 if every element is an integer, else float64);
// other arrays become lists; objects maps.
Value from_json(const nlohmann::json& j);

// A value written as text: "true"/"false" -> bool, an integer -> int64, a number ->
// float64, text starting with '[' or '{' that parses as JSON -> from_json, anything else
// -> string. `type` forces one of: auto, int, float, bool, string, json; kInvalidInput
// when the text does not fit it (auto always fits).
Expected<Value> parse_typed(const std::string& text, const std::string& type);

// A whitespace table of numbers -> 1-D (one column) or 2-D array; otherwise the text
// as a string.
Value parse_file_contents(const std::string& text);

// Plain text for scripts: scalars as themselves, 1-D arrays space-separated, 2-D
// arrays one row per line, anything else as compact JSON.
std::string to_text(const Value& v);

}  // namespace sluice
