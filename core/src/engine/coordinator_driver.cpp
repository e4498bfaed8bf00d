// The coordinator's side of a RunDriver (run_driver.hpp): tasks it adds join the run as
// dynamic children, recorded like those an attempt requests, and it steps only after
// the outcomes it is about to read are committed.
#include <chrono>

#include "engine/coordinator_impl.hpp"
#include "sluice/engine/child_request.hpp"

namespace sluice {

TaskId Coordinator::Impl::add_task(TaskSpec spec, TaskId parent) {
  DynamicTaskRecord rec;
  rec.name = spec.name;
  rec.group = spec.group;
  rec.parent = parent;
  rec.before = -1;
  ChildRequest r{std::move(spec), {}};  // moved through, not copied: once per call
  rec.spec = child_request_text(r);
  rec.index = add_dynamic_task(std::move(r.spec), parent, std::nullopt);
  const TaskId id = rec.index;
  pending_.new_tasks.push_back(std::move(rec));
  scheduler_.on_task_added_after_start(id, std::chrono::steady_clock::now());
  return id;
}

Expected<void> Coordinator::Impl::drive(RunDriver& driver) {
  if (!driver.wants_step(*this)) return {};
  // What the driver reads (a call's success and its artifact) is in the store before
  // the orchestration sees it: a resumed run replays exactly what it was shown.
  if (auto r = flush(std::nullopt, /*file_cache=*/false); !r) return r;
  driver.step(*this);
  return {};
}

}  // namespace sluice
