#include "sluice/workflow_run.hpp"

#include "sluice/engine/backend_registry.hpp"
#include "sluice/engine/store.hpp"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "sdk/orchestration_driver.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/attempt_logs.hpp"
#include "sluice/engine/coordinator.hpp"
#include "sluice/engine/graph.hpp"
#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/engine/loader.hpp"
#include "sluice/engine/run_id.hpp"
#include "sluice/engine/run_lock.hpp"
#include "sluice/engine/sdk_definition.hpp"
#include "sluice/flow.hpp"
#include "sluice/function_args.hpp"

namespace sluice {
namespace {

template <class T>
T check(Expected<T> e) {
  if (!e) throw std::move(e).error();
  return std::move(*e);
}
inline void check(Expected<void> e) {
  if (!e) throw std::move(e).error();
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Any stored definition as a Workflow: an SDK one, or a TOML workflow file's text.
Expected<Workflow> stored_workflow(RunStore& store, const RunRecord& run,
                                   const std::string& program) {
  auto text = store.run_definition(run.id);
  if (!text) return tl::unexpected(text.error());
  if (is_sdk_definition(*text)) return load_sdk_definition(*text, run.base_dir, program);
  LoadOptions lo;
  lo.check_executables = false;
  auto wf = load_workflow_text(*text, run.source_path, run.base_dir, lo);
  if (!wf)
    return make_error(ErrorCode::kInvalidInput,
                      "the stored definition of run " + run.id + " no longer loads");
  return std::move(*wf);
}

}  // namespace

struct WorkflowRun::Impl {
  std::string home;
  std::unique_ptr<RunStore> store;
  bool writable = false;
  RunRecord run;
  std::optional<Workflow> workflow;
  std::optional<Config> config;
  RunOptions options;

  RunRecord& refresh() {
    run = check(store->get_run(run.id));
    return run;
  }
  const TaskRecord task(const std::string& name) {
    for (TaskRecord& t : check(store->list_tasks(run.id)))
      if (t.name == name) return t;
    throw Error(ErrorCode::kNotFound, "run " + run.id + " has no task '" + name + "'");
  }
  std::string attempt_dir(const TaskRecord& t) {
    return store->attempt_dir(run.id, t.name, t.attempts);
  }
};

WorkflowRun::WorkflowRun(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WorkflowRun::WorkflowRun(WorkflowRun&&) noexcept = default;
WorkflowRun& WorkflowRun::operator=(WorkflowRun&&) noexcept = default;
WorkflowRun::~WorkflowRun() = default;

WorkflowRun WorkflowRun::prepare(const Flow& flow, const Config& config, RunOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->home = sluice_home(options.home);
  impl->store = check(RunStore::open(impl->home, RunStore::Mode::kReadWrite));
  impl->writable = true;
  Workflow wf = flow.build();
  const int revision = check(impl->store->register_workflow(wf));
  impl->run = check(impl->store->create_run(wf, revision, new_run_id(), config.backend));
  // The store has the definition now, and nothing reads it from memory again: at a
  // million calls it is ~160 bytes a task held for the whole run.
  std::string().swap(wf.text);
  impl->workflow = std::move(wf);
  impl->config = config;
  impl->options = std::move(options);
  return WorkflowRun(std::move(impl));
}

WorkflowRun WorkflowRun::by_id(const std::string& id, const std::string& home) {
  auto impl = std::make_unique<Impl>();
  impl->home = sluice_home(home);
  impl->store = check(RunStore::open(impl->home, RunStore::Mode::kReadOnly));
  impl->run.id = check(impl->store->resolve_run_id(id));
  impl->refresh();
  impl->options.home = impl->home;
  return WorkflowRun(std::move(impl));
}

WorkflowRun WorkflowRun::attach(const std::string& id, const Config& config, RunOptions options) {
  WorkflowRun run = by_id(id, options.home);
  run.impl_->config = config;
  options.home = run.impl_->home;
  run.impl_->options = std::move(options);
  return run;
}

const std::string& WorkflowRun::id() const {
  return impl_->run.id;
}
std::string WorkflowRun::workflow_id() const {
  return impl_->run.workflow_id();
}
const std::string& WorkflowRun::backend() const {
  return impl_->run.backend;
}
std::string WorkflowRun::run_dir() const {
  return impl_->store->run_dir(impl_->run.id);
}

RunState WorkflowRun::run() {
  Impl& m = *impl_;
  if (!m.writable) {
    m.store = check(RunStore::open(m.home, RunStore::Mode::kReadWrite));
    m.writable = true;
  }
  m.refresh();
  if (m.run.state == RunState::kSucceeded) return m.run.state;
  if (!m.workflow) m.workflow = check(stored_workflow(*m.store, m.run, this_program_name()));
  Config config = m.config ? *m.config : Config{m.run.backend, m.run.backend, {}};
  auto backend = check(create_backend(config.backend, check(config.backend_options())));
  if (auto d = check_against_capacity(*m.workflow, backend->capacity()); !d.empty()) {
    std::string why;
    for (const auto& x : d) why += (why.empty() ? "" : "; ") + x.format();
    throw Error(ErrorCode::kInvalidInput, why);
  }
  auto lock = check(RunLock::acquire(m.store->run_dir(m.run.id)));
  Coordinator coord(*m.store, *backend, *m.workflow, m.run.id);
  if (m.run.state != RunState::kSubmitted) check(coord.restore_from_store());
  CoordinatorOptions co;
  co.interrupt = m.options.interrupt;
  co.use_cache = m.options.use_cache;
  std::unique_ptr<OrchestrationDriver> driver;
  if (m.options.orchestration) {
    driver = make_orchestration_driver(*m.options.orchestration);
    co.driver = driver.get();
  }
  if (m.options.on_progress) {
    co.on_progress = [&](const Scheduler& s, bool final) {
      std::size_t total = 0, done = 0;
      for (int i = 0; i < kTaskStateCount; ++i) {
        total += s.counts()[i];
        if (is_terminal(static_cast<TaskState>(i))) done += s.counts()[i];
      }
      m.options.on_progress(done, total, final);
    };
  }
  const RunState state = check(coord.run(co));
  m.refresh();
  if (driver && !driver->nondeterminism().empty())
    throw Error(ErrorCode::kInvalidInput, driver->nondeterminism());
  return state;
}

RunState WorkflowRun::get_status() {
  return impl_->refresh().state;
}

std::vector<TaskRecord> WorkflowRun::tasks() {
  return check(impl_->store->list_tasks(id()));
}

Value WorkflowRun::get_result(const std::string& task) {
  Impl& m = *impl_;
  const TaskRecord t = m.task(task);
  if (t.state != TaskState::kSucceeded)
    throw Error(ErrorCode::kConflict,
                "task '" + task + "' is " + std::string(to_string(t.state)) + ", not succeeded");
  const std::string path = artifact_path(m.attempt_dir(t));
  if (!exists(path)) {
    // Packed values: in the store (docs/artifacts.md).
    auto packed = check(m.store->attempt_values(m.run.id, t.index, t.attempts));
    if (!packed) return Value();
    if (const Value* v = packed->find(kResultKey)) return *v;
    return Value(std::move(*packed));
  }
  auto reader = check(ArtifactReader::open(path));
  if (reader.contains(kResultKey)) return check(reader.get(kResultKey));
  return Value(check(reader.get_all()));
}

Map WorkflowRun::get_results(bool wait, std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!is_terminal(m.refresh().state)) {
    if (!wait || (timeout.count() > 0 && std::chrono::steady_clock::now() > until))
      throw Error(ErrorCode::kConflict,
                  "run " + m.run.id + " is still " + std::string(to_string(m.run.state)));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const Workflow wf = check(stored_workflow(*m.store, m.run, ""));
  Graph graph(wf);
  Map out;
  for (const TaskRecord& t : check(m.store->list_tasks(m.run.id))) {
    if (t.index >= graph.size() || !graph.children(t.index).empty()) continue;
    if (t.state == TaskState::kSucceeded) out.insert_or_assign(t.name, get_result(t.name));
  }
  return out;
}

std::string WorkflowRun::logs(const std::string& task, bool stderr_log) {
  const TaskRecord t = impl_->task(task);
  if (t.attempts == 0) return "";
  std::string text;
  check(read_attempt_log(*impl_->store, impl_->run.id, t.index, t.name, t.attempts,
                         stderr_log ? LogStream::kStderr : LogStream::kStdout, text));
  return text;
}

std::string WorkflowRun::artifact(const std::string& task) {
  const TaskRecord t = impl_->task(task);
  if (t.attempts == 0) return "";
  std::string path = artifact_path(impl_->attempt_dir(t));
  if (exists(path)) return path;
  // Packed values: the task's group in the run's view (docs/artifacts.md).
  auto packed = check(impl_->store->attempt_values(impl_->run.id, t.index, t.attempts));
  if (!packed) return "";
  return run_dir() + "/run.h5#/" + t.name;
}

}  // namespace sluice
