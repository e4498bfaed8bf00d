// The coordinator's side of dynamic children: reading the requests of an attempt that
// succeeded, checking them all, and adding them to the run in one step.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "engine/coordinator_impl.hpp"
#include "sluice/engine/child_request.hpp"
#include "sluice/engine/counted.hpp"

namespace sluice {
namespace {

Expected<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kIo, "cannot read " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

}  // namespace

bool Coordinator::Impl::is_descendant(TaskId from, TaskId target) const {
  return graph_.reaches(from, target);
}

TaskId Coordinator::Impl::add_dynamic_task(TaskSpec spec, TaskId parent,
                                           std::optional<TaskId> before) {
  spec.after = {parent};
  const TaskId id = graph_.add_task(std::span<const TaskId>(&parent, 1));
  workflow_.index.emplace(spec.name, id);
  workflow_.tasks.push_back(std::move(spec));
  scheduler_.on_task_added(id);
  task_dir_made_.push_back(0);
  has_artifact_.push_back(0);
  packed_.emplace_back();
  segment_of_.push_back(0);
  result_hash_.emplace_back();
  depth_.push_back(static_cast<std::uint16_t>(depth_[parent] + 1));
  if (before) {
    graph_.add_edge(id, *before);
    workflow_.tasks[*before].after.push_back(id);
    scheduler_.on_dependency_added(id, *before);
  }
  return id;
}

void Coordinator::Impl::ingest_children(Completion& c, const std::string* from_dir) {
  if (cancelling_) return;  // the attempt will count as cancelled: its children never exist
  // Nearly every attempt requests no children: one fstatat relative to the run's open
  // tasks directory says so, without building the attempt's absolute path or opening a
  // directory stream (an opendir per completion was 2% of the coordinator's time).
  if (from_dir == nullptr && tasks_fd_ >= 0) {
    std::string& rel = relative_attempt_dir(workflow_.tasks[c.task].name, c.attempt);
    rel.append(kChildRequestDir);
    struct stat st;
    if (::fstatat(tasks_fd_, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) return;
  }
  const std::string dir =
      from_dir ? *from_dir : store_.attempt_dir(run_id_, workflow_.tasks[c.task].name, c.attempt);
  auto files = list_child_requests(dir);
  if (!files) {
    c.failure = "reading child requests: " + files.error().message;
    return;
  }
  if (files->empty()) return;

  const TaskSpec& parent = workflow_.tasks[c.task];
  auto fail = [&](const std::string& why) { c.failure = "add-child: " + why; };
  if (depth_[c.task] + 1u > workflow_.max_child_depth) {
    return fail("task '" + parent.name + "' is nested " + std::to_string(depth_[c.task]) +
                " levels deep among dynamic children; the limit is " +
                std::to_string(workflow_.max_child_depth) + " (max_child_depth in [workflow])");
  }
  std::vector<ChildRequest> requests;
  for (const std::string& file : *files) {
    auto text = read_text(file);
    if (!text) return fail(text.error().message);
    auto parsed = parse_child_requests(*text, file, workflow_.base_dir);
    if (!parsed) {
      const auto& diags = parsed.error();
      std::string why = diags.front().format();
      if (diags.size() > 1) why += " (and " + std::to_string(diags.size() - 1) + " more)";
      return fail(why);
    }
    if (requests.size() + parsed->size() > workflow_.max_children) {
      return fail("more than " + std::to_string(workflow_.max_children) +
                  " children requested by one attempt (max_children in [workflow])");
    }
    for (ChildRequest& r : *parsed) requests.push_back(std::move(r));
  }

  // Check everything before changing anything: all children enter the graph or none.
  const Capacity capacity = backend_.capacity();
  std::unordered_set<std::string> names;
  std::unordered_map<std::string, std::string> downstream_problem;  // before -> "" when fine
  for (const ChildRequest& r : requests) {
    const TaskSpec& s = r.spec;
    if (workflow_.index.count(s.name) != 0)
      return fail("child '" + s.name + "': the run already has a task named '" + s.name + "'");
    if (s.cpus > capacity.cpus || s.gpus > capacity.gpus) {
      return fail("child '" + s.name + "' needs " + counted(s.cpus, "cpu", "cpus") + " and " +
                  counted(s.gpus, "GPU", "GPUs") + "; the backend offers " +
                  std::to_string(capacity.cpus) + " and " + std::to_string(capacity.gpus));
    }
    if (!capacity.offers(s.executor))
      return fail("child '" + s.name + "' asks for executor '" + s.executor +
                  "', which no slot of the backend offers");
    if (!r.before.empty() && names.count(r.before) == 0) {  // an earlier sibling is fine
      auto [it, fresh] = downstream_problem.try_emplace(r.before);
      if (fresh) {
        auto d = workflow_.index.find(r.before);
        if (d == workflow_.index.end()) {
          it->second = "no task named '" + r.before + "'";
        } else if (!is_descendant(c.task, d->second)) {
          it->second = "'" + r.before + "' is not downstream of '" + parent.name + "'";
        } else if (scheduler_.state(d->second) != TaskState::kWaiting) {
          it->second = "'" + r.before + "' is already " +
                       std::string(to_string(scheduler_.state(d->second)));
        }
      }
      if (!it->second.empty())
        return fail("child '" + s.name + "' cannot run before " + it->second);
    }
    if (!names.insert(s.name).second)
      return fail("child '" + s.name + "' is requested twice by this attempt");
  }

  for (ChildRequest& r : requests) {
    std::optional<TaskId> before;
    if (!r.before.empty()) before = workflow_.index.at(r.before);
    DynamicTaskRecord rec;
    rec.name = r.spec.name;
    rec.group = r.spec.group;
    rec.parent = c.task;
    rec.before = before ? static_cast<std::int64_t>(*before) : -1;
    rec.spec = child_request_text(r);
    rec.index = add_dynamic_task(std::move(r.spec), c.task, before);
    pending_.new_tasks.push_back(std::move(rec));
  }
}

}  // namespace sluice
