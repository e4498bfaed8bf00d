// Error: what went wrong, as a closed code plus a human message. It is the one error
// type of Sluice, a value inside and an exception at the edge (LevelDB's Status):
//
// - Inside the engine, functions that can fail return Expected<T> (tl::expected<T,
//   Error>), which holds either the value or the Error; nothing is thrown.
// - At the SDK's edge, the calls a program makes throw sluice::Error (which is a
//   std::exception, so `catch (const std::exception&)` also catches it):
//     Flow (constructor, call)            kInvalidInput: an unsafe name, a negative
//                                         resource, a Future or `after` of another Flow
//     Config::load                        kNotFound (no such configuration) or
//                                         kInvalidInput (a malformed file)
//     WorkflowRun (prepare, by_id, run,   kNotFound (an unknown run or task), kConflict
//       get_result, ...)                  (run busy or not finished), or the code of
//                                         the store, backend or file that failed
//     Value::get, NdArray::values,        kInvalidInput: a Value of another type, an
//     NdArray(values, shape), codecs      array of another dtype or shape
//     the invoker of a sluice::task       kInvalidInput: the wrong number of arguments
//     TaskContext::add_child              kIo: the request cannot be written
//   std::bad_alloc is the one other exception: memory is exhausted.
// - A function task reports failure by throwing anything; its attempt fails with the
//   exception's message (function.hpp).
// - sluice::main and the `sluice` CLI turn an Error into an exit status: 2 for
//   kInvalidInput, kNotFound and kConflict (the caller can fix it), 3 for the others;
//   1 means the workflow ran and failed.
//
// Thread-safety: an Error is a plain value; distinct Errors may be used from distinct
// threads.
#pragma once

#include <exception>
#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace sluice {

enum class ErrorCode {
  kInvalidInput,  // the user gave something malformed (workflow file, argument, Value type)
  kNotFound,      // a run, task, attempt, configuration or file does not exist
  kConflict,      // the operation clashes with the current state (run still running)
  kIo,            // the operating system refused (open, write, spawn)
  kStore,         // SQLite reported an error
  kBackend,       // the execution backend failed
};

class Error : public std::exception {
 public:
  Error() = default;  // kInvalidInput with no message
  Error(ErrorCode c, std::string m) : code(c), message(std::move(m)) {}

  // The message alone: messages are written for people, the code is for programs.
  const char* what() const noexcept override { return message.c_str(); }

  ErrorCode code = ErrorCode::kInvalidInput;
  std::string message;
};

template <class T>
using Expected = tl::expected<T, Error>;

inline tl::unexpected<Error> make_error(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)));
}

}  // namespace sluice
