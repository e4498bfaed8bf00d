// Flow: a workflow written as C++ code. Calling a registered function (function.hpp)
// on a Flow adds a task and returns a Future of its result; passing a Future to a later
// call makes that call a dependent task that receives the result. Nothing runs while
// the Flow is built: build() turns it into an ordinary Workflow (TaskSpecs) that the
// scheduler, store and every backend handle like a TOML workflow.
//
//   sluice::Flow flow("train_and_pick_model", "examples");
//   auto data = flow.call(load, "iris.csv");
//   std::vector<sluice::Future<Model>> models;
//   for (double lr : {0.1, 0.01})
//     models.push_back(flow.call(sluice::opts{.gpus = 1, .executor = "gpu"}, train, data, lr));
//   auto best = flow.call(pick_best, flow.gather(models));   // pick_best(std::vector<Model>)
//
// Task names are the function's name, then NAME.1, NAME.2, … for later calls (or
// opts.name). A sub-workflow (sluice::workflow) called on a Flow adds its tasks under
// its own name: "pick.train_model.1"; sub-workflows may call sub-workflows.
//
// Not thread-safe. Copies of a Flow (and the Flow a sub-workflow receives) add to the
// same definition.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/duration.hpp"
#include "sluice/function.hpp"
#include "sluice/function_args.hpp"
#include "sluice/workflow.hpp"

namespace sluice {

// Per-call settings; every field has the default a TOML task has.
struct CallOptions {
  std::string name{};        // task name; empty: the function's name (NAME.N when repeated)
  int cpus = 1;
  int gpus = 0;
  std::string executor{};    // executor label ("cpu", "gpu"); empty: any slot
  int retries = 0;           // extra attempts after a failure
  Millis max_exec_time{0};   // 0: unlimited
  Millis max_wait_time{0};   // 0: unlimited
  std::int64_t memory_mib = 0;
  // Extra parents that pass no value: the call waits for these tasks (Future::task()).
  std::vector<TaskId> after{};
};
using opts = CallOptions;

// The result of a call, to pass to later calls. Cheap to copy.
template <class T>
class Future {
 public:
  using Type = T;
  TaskId task() const { return task_; }

 private:
  friend class Flow;
  explicit Future(TaskId t) : task_(t) {}
  TaskId task_ = 0;
};

// The results of several calls as one std::vector<T> argument (flow.gather()).
template <class T>
class Gathered {
 public:
  const std::vector<TaskId>& tasks() const { return tasks_; }

 private:
  friend class Flow;
  std::vector<TaskId> tasks_;
};

// A workflow that other workflows call: `body(Flow&, args...)` adds its tasks to the
// Flow it is given and returns what the caller gets back (usually a Future).
template <class Body>
struct SubWorkflow {
  std::string name;
  Body body;
};
template <class Body>
SubWorkflow<Body> workflow(std::string name, Body body) {
  return {std::move(name), std::move(body)};
}

class Flow {
 public:
  // `name` and `project` must be safe names (letters, digits, '_', '-'); throws
  // sluice::Error kInvalidInput otherwise.
  explicit Flow(std::string name, std::string project = "default");

  const std::string& name() const;
  const std::string& project() const;
  std::size_t size() const;  // tasks so far

  // Adds a call of `t` with `args` (literal values, Futures or Gathered lists). Throws
  // sluice::Error kInvalidInput for an unsafe opts.name, a negative resource, or a
  // Future or `after` task of another Flow.
  template <class R, class... P, class... A>
  Future<R> call(const Task<R(P...)>& t, A&&... args) {
    return call(CallOptions{}, t, std::forward<A>(args)...);
  }
  template <class R, class... P, class... A>
  Future<R> call(const CallOptions& o, const Task<R(P...)>& t, A&&... args) {
    static_assert(sizeof...(P) == sizeof...(A), "wrong number of arguments for this task");
    if (!recording_) return Future<R>(skip_call());
    Bound b;
    (bind<P>(b, std::forward<A>(args)), ...);
    return Future<R>(add(t.name(), t.version(), o, std::move(b)));
  }

  // Calls a sub-workflow: its tasks get the prefix "NAME." (NAME.N when repeated).
  template <class Body, class... A>
  decltype(auto) call(const SubWorkflow<Body>& w, A&&... args) {
    Flow sub(state_, unique_name(prefix_ + w.name) + ".");
    return w.body(sub, std::forward<A>(args)...);
  }

  template <class T>
  Gathered<T> gather(const std::vector<Future<T>>& futures) const {
    Gathered<T> g;
    for (const auto& f : futures) g.tasks_.push_back(f.task());
    return g;
  }

  // The definition as a Workflow: function tasks whose `command` runs them in a worker
  // process of this program, content hash over names, versions, arguments, resources
  // and edges.
  Workflow build() const;

 private:
  struct Bound {
    std::vector<Argument> args;
    std::vector<TaskId> after;
  };
  struct Node;
  struct State;
  Flow(std::shared_ptr<State> state, std::string prefix);

  TaskId add(const std::string& fn, const std::string& version, const CallOptions& o, Bound b);
  TaskId skip_call();
  std::string unique_name(const std::string& base);
  static std::uint32_t position(Bound& b, TaskId parent);
  std::string task_name(TaskId t) const;

  template <class P, class A>
  void bind(Bound& b, A&& a) {
    using D = std::decay_t<A>;
    Argument arg;
    if constexpr (is_future<D>::value) {
      static_assert(std::is_convertible_v<typename D::Type, P>,
                    "a Future passed where its type does not fit the parameter");
      arg.kind = Argument::Kind::kResult;
      arg.refs.push_back({position(b, a.task()), task_name(a.task())});
    } else if constexpr (is_gathered<D>::value) {
      arg.kind = Argument::Kind::kGather;
      for (TaskId t : a.tasks()) arg.refs.push_back({position(b, t), task_name(t)});
    } else {
      arg.value = to_value<P>(static_cast<P>(std::forward<A>(a)));
    }
    b.args.push_back(std::move(arg));
  }
  template <class T>
  struct is_future : std::false_type {};
  template <class T>
  struct is_future<Future<T>> : std::true_type {};
  template <class T>
  struct is_gathered : std::false_type {};
  template <class T>
  struct is_gathered<Gathered<T>> : std::true_type {};

  std::shared_ptr<State> state_;
  std::string prefix_;  // "" or "sub." for the tasks of a sub-workflow
  // False in a function-task worker (`APP __sluice_worker …`) before sluice::main: it runs
  // one function and never this graph, so calls only count (size() still grows).
  bool recording_ = true;
};

}  // namespace sluice
