// Function tasks: plain C++ functions registered under a name and a version, so that a
// workflow can call them (flow.hpp) and any backend can execute them: the inproc
// backend on its threads, the local and Slurm backends in a worker process of the same
// program (`APP __sluice_worker`, see sdk_main.hpp).
//
//   double train_model(const Data& data, double lr, int layers);
//   auto train = sluice::task("train_model", "0.0.1", &train_model);
//
// Parameters and the result go through sluice::Codec (codec.hpp). A function may take a
// `sluice::TaskContext&` as its first parameter to learn where it runs or to add dynamic
// children, and may write to `sluice::log()` (or ctx.log()), which ends up in the
// attempt's stdout log (`sluice logs RUN TASK`) on every backend. A function reports
// failure by throwing; its attempt then fails with the exception's message (and is
// retried if the call allows retries).
//
// Thread-safety: register every function before a run starts (at namespace scope or at
// the top of main); lookups are then safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/codec.hpp"
#include "sluice/error.hpp"
#include "sluice/value.hpp"

namespace sluice {

struct ChildRequest;

// Where a function runs: one attempt of one task. Used by the one thread running it.
class TaskContext {
 public:
  std::string run_id;
  std::string task;  // the task's full name ("pick_best.train_model.2")
  std::uint32_t attempt = 1;
  std::string attempt_dir;  // this attempt's directory (made on first use in-process)
  // Set by process workers, whose stdout already is the attempt's stdout file.
  bool stdout_is_log = false;

  TaskContext() = default;
  TaskContext(const TaskContext&) = delete;
  TaskContext& operator=(const TaskContext&) = delete;
  ~TaskContext();

  // Asks for a dynamic child task (children.hpp); it runs after this attempt succeeds.
  // Returns the request file's path. Throws sluice::Error (kIo) when it cannot be written.
  std::string add_child(const ChildRequest& child);

  // This attempt's log: its stdout file, what `sluice logs RUN TASK` prints. Use it
  // instead of std::cout: in-process backends (inproc, MPI workers) run many tasks on
  // threads of one process, whose stdout cannot be split per task. In-process, the file
  // is opened (append) on first use and closed when the attempt ends; when it cannot be
  // opened, std::clog is returned.
  std::ostream& log();

 private:
  std::unique_ptr<std::ostream> log_;
};

// The log of the attempt the calling thread is running (TaskContext::log()), or
// std::clog outside a function task.
std::ostream& log();

// A registered function, type-erased: takes the decoded argument Values, returns the
// result Value (null for void functions). Throws on failure.
using Invoker = std::function<Value(TaskContext&, std::vector<Value>&)>;

struct FunctionInfo {
  std::string name;
  std::string version;
  std::size_t arity = 0;  // number of arguments, TaskContext not counted
  bool returns_void = false;
  Invoker invoke;

  std::string key() const { return name + "@" + version; }  // "train_model@0.0.1"
};

// Registers `info` under info.key(), replacing an earlier one with the same key.
void register_function(FunctionInfo info);
// The function registered as "name@version", or nullptr.
const FunctionInfo* find_function(std::string_view key);

// Calls `f` with `args`, turning an exception into kBackend "NAME@VERSION: what".
Expected<Value> invoke_function(const FunctionInfo& f, TaskContext& ctx, std::vector<Value>& args);

// One attempt of a function task executed by a worker (a process of the same program,
// or an MPI rank): everything the attempt's environment says, as values.
struct FunctionAttempt {
  std::string function;   // "name@version"
  std::string arguments;  // encode_arguments() text
  std::string run_id, task, attempt_dir;
  std::uint32_t attempt = 1;
  std::string output;  // where the result artifact goes ($SLUICE_OUTPUT)
  // The attempt's results file ($SLUICE_RESULTS): a result up to kMaxPackedValueBytes
  // encoded goes there, for the coordinator to pack; empty: always `output`.
  std::string results;
  // The artifact path of parent `env_name` (SLUICE_INPUT_<PARENT>), "" when it has none.
  std::function<std::string(const std::string& env_name)> input;
  bool stdout_is_log = false;  // see TaskContext
};

// Runs `a`: decodes its arguments, reads the parents' results, calls the function and
// writes its result artifact. Returns the exit status (0 ok, 1 the function threw or the
// result could not be written, 2 bad arguments or unknown function) and, unless 0, why
// in `why`. Thread-safe. When it writes a result artifact and `content_hash` is given,
// sets it to the artifact's content hash (values_content_hash), computed from the value.
int execute_function_attempt(const FunctionAttempt& a, std::string& why,
                             std::string* content_hash = nullptr);

// A handle to a registered function with signature R(Args...); cheap to copy.
template <class Sig>
class Task;
template <class R, class... Args>
class Task<R(Args...)> {
 public:
  using Result = R;
  Task(std::string name, std::string version)
      : name_(std::move(name)), version_(std::move(version)) {}
  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  std::string key() const { return name_ + "@" + version_; }

 private:
  std::string name_, version_;
};

namespace detail {

template <class F>
struct Signature;
template <class R, class... A>
struct Signature<std::function<R(A...)>> {
  using Result = R;
  using Args = std::tuple<A...>;
};

template <class Tuple>
struct DropContext {
  static constexpr bool kHasContext = false;
  using Args = Tuple;
};
template <class... A>
struct DropContext<std::tuple<TaskContext&, A...>> {
  static constexpr bool kHasContext = true;
  using Args = std::tuple<A...>;
};

template <class R, class Args>
struct TaskOf;
template <class R, class... A>
struct TaskOf<R, std::tuple<A...>> {
  using type = Task<R(std::decay_t<A>...)>;
};

template <bool kCtx, class R, class... A, class F, std::size_t... I>
Value call_decoded(F& f, TaskContext& ctx, std::vector<Value>& in, std::index_sequence<I...>) {
  auto call = [&]() -> decltype(auto) {
    if constexpr (kCtx) {
      return f(ctx, from_value<std::decay_t<A>>(in[I])...);
    } else {
      (void)ctx;
      return f(from_value<std::decay_t<A>>(in[I])...);
    }
  };
  if constexpr (std::is_void_v<R>) {
    call();
    return Value();
  } else {
    return to_value<std::decay_t<R>>(call());
  }
}

template <bool kCtx, class R, class ArgsTuple>
struct MakeInvoker;
template <bool kCtx, class R, class... A>
struct MakeInvoker<kCtx, R, std::tuple<A...>> {
  template <class F>
  static Invoker make(F f) {
    return [f = std::move(f)](TaskContext& ctx, std::vector<Value>& in) mutable -> Value {
      if (in.size() != sizeof...(A))
        throw Error(ErrorCode::kInvalidInput, "expected " + std::to_string(sizeof...(A)) +
                                                  " arguments, got " + std::to_string(in.size()));
      return call_decoded<kCtx, R, A...>(f, ctx, in, std::index_sequence_for<A...>{});
    };
  }
};

}  // namespace detail

// Registers `f` (a function pointer, lambda or other callable with one signature) as
// "name@version" and returns its handle. REQUIRES: every parameter and the result type
// (unless void) have a Codec.
template <class F>
auto task(std::string name, std::string version, F f) {
  using Sig = detail::Signature<decltype(std::function{f})>;
  using Drop = detail::DropContext<typename Sig::Args>;
  using R = typename Sig::Result;
  FunctionInfo info;
  info.name = name;
  info.version = version;
  info.arity = std::tuple_size_v<typename Drop::Args>;
  info.returns_void = std::is_void_v<R>;
  info.invoke = detail::MakeInvoker<Drop::kHasContext, R, typename Drop::Args>::make(std::move(f));
  register_function(std::move(info));
  return typename detail::TaskOf<std::decay_t<R>, typename Drop::Args>::type(std::move(name),
                                                                             std::move(version));
}

// Runs one function task in this process as a worker: decodes `arguments`, reads the
// parents' results from the artifacts named by SLUICE_INPUT_<NAME>, calls the function
// registered as `function` and writes its result to $SLUICE_OUTPUT. Returns the exit
// code (0 ok, 1 the function threw, 2 bad arguments or unknown function).
int run_worker(const char* function, const char* arguments);

}  // namespace sluice
