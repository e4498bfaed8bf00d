#include "sluice/flow.hpp"

#include <unistd.h>

#include <memory>

#include "sdk/call_options.hpp"
#include "sdk/worker_preamble.hpp"
#include "sluice/engine/sdk_definition.hpp"
#include "sluice/error.hpp"

namespace sluice {

// One call. A million-call sweep keeps a million of these beside the built Workflow, so
// the resources are kept only where a call set them (most calls take the defaults).
struct Flow::Node {
  std::string name, function;                    // function: "fn@version"
  std::size_t at = 0;                            // where "@version" starts in function
  std::unique_ptr<const CallOptions> resources;  // null: the defaults
  Bound bound;
};

struct Flow::State {
  std::string name, project;
  std::vector<Node> nodes;
  std::unordered_map<std::string, std::uint32_t> used;  // name -> calls so far
  bool recording = true;
  std::size_t skipped = 0;  // calls not recorded (a worker's preamble)
};

namespace {

bool default_resources(const CallOptions& o) {
  const CallOptions d;
  return o.cpus == d.cpus && o.gpus == d.gpus && o.memory_mib == d.memory_mib &&
         o.executor == d.executor && o.retries == d.retries && o.max_exec_time == d.max_exec_time &&
         o.max_wait_time == d.max_wait_time;
}

bool safe_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

std::string cwd() {
  char buf[4096];
  return ::getcwd(buf, sizeof(buf)) ? std::string(buf) : std::string(".");
}

}  // namespace

Flow::Flow(std::string name, std::string project) : state_(std::make_shared<State>()) {
  if (!safe_name(name))
    throw Error(ErrorCode::kInvalidInput, "workflow name '" + name + "' is not safe");
  if (!safe_name(project))
    throw Error(ErrorCode::kInvalidInput, "project '" + project + "' is not safe");
  state_->name = std::move(name);
  state_->project = std::move(project);
  state_->recording = !in_worker_preamble();
  recording_ = state_->recording;
}

Flow::Flow(std::shared_ptr<State> state, std::string prefix)
    : state_(std::move(state)), prefix_(std::move(prefix)), recording_(state_->recording) {}

const std::string& Flow::name() const {
  return state_->name;
}
const std::string& Flow::project() const {
  return state_->project;
}
std::size_t Flow::size() const {
  return state_->nodes.size() + state_->skipped;
}

TaskId Flow::skip_call() {
  return static_cast<TaskId>(state_->skipped++);
}

std::string Flow::unique_name(const std::string& base) {
  auto [it, fresh] = state_->used.try_emplace(base, 0);
  if (fresh) return base;
  while (true) {
    std::string candidate = base + "." + std::to_string(++it->second);
    if (state_->used.try_emplace(candidate, 0).second) return candidate;
  }
}

std::uint32_t Flow::position(Bound& b, TaskId parent) {
  for (std::uint32_t i = 0; i < b.after.size(); ++i)
    if (b.after[i] == parent) return i;
  b.after.push_back(parent);
  return static_cast<std::uint32_t>(b.after.size() - 1);
}

std::string Flow::task_name(TaskId t) const {
  if (t >= state_->nodes.size()) throw Error(ErrorCode::kInvalidInput, "a Future of another Flow");
  return state_->nodes[t].name;
}

TaskId Flow::add(const std::string& fn, const std::string& version, const CallOptions& o, Bound b) {
  if (!o.name.empty() && !safe_name(o.name))
    throw Error(ErrorCode::kInvalidInput, "task name '" + o.name + "' is not safe");
  if (o.cpus < 0 || o.gpus < 0 || o.retries < 0 || o.memory_mib < 0)
    throw Error(ErrorCode::kInvalidInput, "negative resources for a call of '" + fn + "'");
  for (TaskId p : o.after) {
    if (p >= state_->nodes.size())
      throw Error(ErrorCode::kInvalidInput, "'after' names a task of another Flow");
    position(b, p);
  }
  Node n;
  n.name = unique_name(prefix_ + (o.name.empty() ? fn : o.name));
  n.function = fn + "@" + version;
  n.at = fn.size();
  if (!default_resources(o)) n.resources = std::make_unique<const CallOptions>(o);
  n.bound = std::move(b);
  state_->nodes.push_back(std::move(n));
  return static_cast<TaskId>(state_->nodes.size() - 1);
}

Workflow Flow::build() const {
  Workflow wf;
  wf.name = state_->name;
  wf.project = state_->project;
  wf.base_dir = cwd();
  const std::string program = this_program_name();
  wf.index.reserve(state_->nodes.size());
  for (const Node& n : state_->nodes) {
    TaskSpec t;
    t.name = n.name;
    t.group = n.name.substr(0, n.name.find('.'));
    t.version = n.function.substr(n.at + 1);
    t.function = n.function;
    t.arguments = encode_arguments(n.bound.args);
    t.command = worker_command(program, t.function, t.arguments);
    t.after = n.bound.after;
    apply_call_options(n.resources ? *n.resources : CallOptions{}, t);
    t.workdir = wf.base_dir;
    wf.index.emplace(t.name, static_cast<TaskId>(wf.tasks.size()));
    wf.tasks.push_back(std::move(t));
  }
  wf.content_hash = sdk_content_hash(wf);
  wf.text = sdk_definition_text(wf);
  return wf;
}

}  // namespace sluice
