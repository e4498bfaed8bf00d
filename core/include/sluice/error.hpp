// Errors are values inside the engine and exceptions only at its edges (loader entry
// points, CLI). An Error is a closed code plus a human message; functions that can fail
// return Expected<T>, which holds either the value or the Error.
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace sluice {

enum class ErrorCode {
  kInvalidInput,  // the user gave something malformed (workflow file, argument)
  kNotFound,      // a run, task, attempt or file does not exist
  kConflict,      // the operation clashes with the current state (run still running)
  kIo,            // the operating system refused (open, write, spawn)
  kStore,         // SQLite reported an error
  kBackend,       // the execution backend failed
};

struct Error {
  ErrorCode code = ErrorCode::kInvalidInput;
  std::string message;
};

template <class T>
using Expected = tl::expected<T, Error>;

inline tl::unexpected<Error> make_error(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error{code, std::move(message)});
}

}  // namespace sluice
