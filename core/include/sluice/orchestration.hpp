// Orchestrations: workflows that decide as they go. An orchestration is a C++20
// coroutine that runs in the coordinator; each `co_await ctx.call(...)` makes a task of
// the run (a registered function, function.hpp) and suspends until its value is back.
// Branches, loops and retries are ordinary C++ around the awaits.
//
//   sluice::Orchestration<double> bisect(sluice::Context& ctx, double lo, double hi) {
//     for (int round = 0; round < 20; ++round) {
//       std::vector<sluice::Call<double>> evals;
//       for (int i = 1; i <= 4; ++i) evals.push_back(ctx.call(eval_t, lo + i * (hi - lo) / 5));
//       std::vector<double> f = co_await ctx.all(std::move(evals));   // 4 in parallel
//       ...
//     }
//     co_return (lo + hi) / 2;
//   }
//   int main(int argc, char** argv) {
//     auto o = sluice::orchestration("bisect", "examples",
//                                    [](sluice::Context& ctx) { return bisect(ctx, 0, 1); });
//     return sluice::main(argc, argv, o);     // ./bisect run --backend local
//   }
//
// Calls are issued when ctx.call() is made (so several run in parallel until awaited)
// and named "ORCH.call-SEQ-FUNCTION", SEQ counting every call, now() and random() of the
// run from 1; `get`, `graph`, `report` and `watch` show them as the run goes on.
//
// Durable replay. A call's function, arguments and result are in the run store before
// the coroutine sees the result. Resuming the run (`APP start RUN` after the
// coordinator died) runs the coroutine again from the start: a call that had succeeded
// returns its stored value at once, without running; one that was in flight is
// re-attached or run again; new ones run. Hence the determinism rules: an
// orchestration may branch only on its arguments, on awaited values and on ctx.now() /
// ctx.random() (recorded on first use, returned from the record on replay); not on
// clocks, files or the environment. A replay that makes a different call from the
// recorded one at some SEQ stops the run with an error naming that call (exit 2).
//
// A call whose task fails (after its retries) throws sluice::Error (kBackend, the
// task's reason) from the co_await; the coroutine may catch it and go on. An exception
// that leaves the orchestration fails the run. Orchestrations nest: co_await another
// Orchestration<T> with the same Context; its calls continue the same sequence.
//
// Not thread-safe: an orchestration and its Context live on the coordinator's thread.
#pragma once

#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/codec.hpp"
#include "sluice/error.hpp"
#include "sluice/flow.hpp"
#include "sluice/function.hpp"
#include "sluice/value.hpp"

namespace sluice {

class Context;

// What an awaited command task gives back: its exit status and the values it wrote
// with `sluice put` (empty unless it exited 0).
struct CommandResult {
  int exit_status = 0;
  Map values;
};

namespace detail {

// One call's outcome, shared by the Call handle and the orchestration's host.
struct CallState {
  std::string task;  // the task's name
  bool done = false;
  bool failed = false;
  Value value;
  CommandResult command;  // command tasks
  std::string error;
  std::vector<std::function<void()>> listeners;

  // Marks the call done and wakes whoever waits (at most once each).
  void finish() {
    done = true;
    auto l = std::move(listeners);
    listeners.clear();
    for (auto& f : l) f();
  }
};

// Where calls go: the coordinator's orchestration driver (orchestration.cpp).
class Host {
 public:
  virtual ~Host() = default;
  virtual std::shared_ptr<CallState> call(const std::string& function, std::string arguments,
                                          const CallOptions& o) = 0;
  virtual std::shared_ptr<CallState> command(std::vector<std::string> argv,
                                             const CallOptions& o) = 0;
  virtual std::int64_t now_us() = 0;
  virtual std::uint64_t random() = 0;
};

template <class T>
struct ResultSlot {
  std::optional<T> value;
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() { return std::move(*value); }
};
template <>
struct ResultSlot<void> {
  void return_void() {}
  void take() {}
};

}  // namespace detail

// A coroutine that orchestrates calls and returns T. Starts when first awaited (or when
// the engine starts it as the run's orchestration). Move-only; owns its frame.
template <class T>
class [[nodiscard]] Orchestration {
 public:
  struct promise_type : detail::ResultSlot<T> {
    std::exception_ptr error;
    std::coroutine_handle<> continuation;
    Orchestration get_return_object() {
      return Orchestration(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct Final {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        auto c = h.promise().continuation;
        return c ? c : std::noop_coroutine();
      }
      void await_resume() noexcept {}
    };
    Final final_suspend() noexcept { return {}; }
    void unhandled_exception() { error = std::current_exception(); }
  };
  using Handle = std::coroutine_handle<promise_type>;

  Orchestration(Orchestration&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Orchestration& operator=(Orchestration&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~Orchestration() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> c) noexcept {
    h_.promise().continuation = c;
    return h_;
  }
  T await_resume() {
    if (h_.promise().error) std::rethrow_exception(h_.promise().error);
    return h_.promise().take();
  }

  // For the engine: runs the coroutine until its first suspension; done() once it ended.
  void start() { h_.resume(); }
  bool done() const { return h_.done(); }
  // REQUIRES: done(). Its value, or rethrows what left the coroutine.
  T result() { return await_resume(); }

 private:
  explicit Orchestration(Handle h) : h_(h) {}
  Handle h_;
};

// An issued call; co_await it for the value R (throws sluice::Error when the task
// failed). Cheap to copy; copies await the same call.
template <class R>
class Call {
 public:
  explicit Call(std::shared_ptr<detail::CallState> s) : s_(std::move(s)) {}
  const std::string& task() const { return s_->task; }  // the call's task name
  bool done() const { return s_->done; }

  bool await_ready() const noexcept { return s_->done; }
  void await_suspend(std::coroutine_handle<> h) {
    s_->listeners.push_back([h] { h.resume(); });
  }
  R await_resume() const {
    if (s_->failed)
      throw Error(ErrorCode::kBackend, "call '" + s_->task + "' failed: " + s_->error);
    if constexpr (std::is_same_v<R, CommandResult>) {
      return s_->command;
    } else if constexpr (!std::is_void_v<R>) {
      return from_value<R>(s_->value);
    }
  }
  const std::shared_ptr<detail::CallState>& state() const { return s_; }

 private:
  std::shared_ptr<detail::CallState> s_;
};

// Waits until one of several calls is done; co_await gives its index in the list.
class AnyOf {
 public:
  explicit AnyOf(std::vector<std::shared_ptr<detail::CallState>> calls)
      : calls_(std::move(calls)) {}
  bool await_ready() const noexcept {
    for (const auto& c : calls_)
      if (c->done) return true;
    return calls_.empty();
  }
  void await_suspend(std::coroutine_handle<> h) {
    auto fired = std::make_shared<bool>(false);
    for (const auto& c : calls_)
      c->listeners.push_back([h, fired] {
        if (!*fired) {
          *fired = true;
          h.resume();
        }
      });
  }
  std::size_t await_resume() const {
    for (std::size_t i = 0; i < calls_.size(); ++i)
      if (calls_[i]->done) return i;
    throw Error(ErrorCode::kInvalidInput, "ctx.any() of no calls");
  }

 private:
  std::vector<std::shared_ptr<detail::CallState>> calls_;
};

// What an orchestration is given: issues calls, replay-safe time and randomness.
class Context {
 public:
  explicit Context(detail::Host& host) : host_(&host) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Issues a call of `t` with literal `args` (options as in Flow::call; opts.name and
  // opts.after are ignored: calls are named by their sequence number).
  template <class R, class... P, class... A>
  Call<R> call(const CallOptions& o, const Task<R(P...)>& t, A&&... args) {
    static_assert(sizeof...(P) == sizeof...(A), "wrong number of arguments for this task");
    std::vector<Argument> bound;
    (bound.push_back(literal<P>(std::forward<A>(args))), ...);
    return Call<R>(host_->call(t.key(), encode_arguments(bound), o));
  }
  template <class R, class... P, class... A>
  Call<R> call(const Task<R(P...)>& t, A&&... args) {
    return call(CallOptions{}, t, std::forward<A>(args)...);
  }

  // Issues a command task (argv, no shell); its values are what it `sluice put`s. A
  // command that exits non-zero gives its status (no exception); one that could not
  // run or was killed throws from the co_await.
  Call<CommandResult> command(const CallOptions& o, std::vector<std::string> argv) {
    return Call<CommandResult>(host_->command(std::move(argv), o));
  }

  // Waits for every call; the values in order. Throws the first failure (in order).
  template <class R>
  Orchestration<std::vector<R>> all(std::vector<Call<R>> calls) {
    std::vector<R> out;
    out.reserve(calls.size());
    for (auto& c : calls) out.push_back(co_await c);
    co_return out;
  }
  // Waits until one of `calls` is done (succeeded or failed); gives its index.
  template <class R>
  AnyOf any(const std::vector<Call<R>>& calls) {
    std::vector<std::shared_ptr<detail::CallState>> s;
    for (const auto& c : calls) s.push_back(c.state());
    return AnyOf(std::move(s));
  }

  // Wall-clock time, recorded on first run and replayed afterwards.
  std::chrono::system_clock::time_point now() {
    return std::chrono::system_clock::time_point(std::chrono::microseconds(host_->now_us()));
  }
  // 64 random bits, recorded on first run and replayed afterwards.
  std::uint64_t random() { return host_->random(); }

 private:
  template <class P, class A>
  static Argument literal(A&& a) {
    Argument arg;
    arg.value = to_value<P>(static_cast<P>(std::forward<A>(a)));
    return arg;
  }
  detail::Host* host_;
};

// The definition of an orchestration workflow: its name, project and the body that
// starts the coroutine. Pass it to sluice::main (sdk_main.hpp) or WorkflowRun.
struct OrchestrationDef {
  std::string name;
  std::string project;
  std::function<Orchestration<Value>(Context&)> body;

  // The static part of the run: one task, NAME, that every call hangs from.
  Flow flow() const;
};

namespace detail {
template <class T, class F>
Orchestration<Value> erase(F& body, Context& ctx) {
  if constexpr (std::is_void_v<T>) {
    co_await body(ctx);
    co_return Value();
  } else {
    co_return to_value<T>(co_await body(ctx));
  }
}
}  // namespace detail

// Defines an orchestration: `body(Context&)` returns an Orchestration<T> whose T has a
// Codec (or is void). `name` and `project` must be safe names (as for Flow).
template <class F>
OrchestrationDef orchestration(std::string name, std::string project, F body) {
  using O = std::invoke_result_t<F&, Context&>;
  using T = decltype(std::declval<O&>().result());
  OrchestrationDef d;
  d.name = std::move(name);
  d.project = std::move(project);
  d.body = [body = std::move(body)](Context& ctx) mutable { return detail::erase<T>(body, ctx); };
  return d;
}

}  // namespace sluice
