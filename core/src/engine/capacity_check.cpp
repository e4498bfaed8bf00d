#include "sluice/engine/counted.hpp"
#include "sluice/engine/loader.hpp"

namespace sluice {
namespace {

// "1 GPU", "3 GPUs": the messages a user reads.
std::string gpu_count(int n) {
  return std::to_string(n) + (n == 1 ? " GPU" : " GPUs");
}

}  // namespace

Diagnostics check_against_capacity(const Workflow& workflow, const Capacity& capacity) {
  Diagnostics out;
  const std::string& file = workflow.source_path;
  const std::string* reported_group = nullptr;
  for (const TaskSpec& t : workflow.tasks) {
    // Matrix instances share their group's definition (and are consecutive): report
    // the group once.
    if (reported_group && *reported_group == t.group) continue;
    const std::size_t before = out.size();
    const std::string who = "task '" + t.group + "'";
    if (t.cpus > capacity.cpus)
      out.push_back({file, t.cpus_pos,
                     who + " needs " + counted(t.cpus, "cpu", "cpus") + " but the backend offers " +
                         std::to_string(capacity.cpus)});
    else if (t.gpus > capacity.gpus)
      out.push_back({file, t.gpus_pos,
                     who + " needs " + gpu_count(t.gpus) + " but the backend offers " +
                         std::to_string(capacity.gpus) + " (declare GPUs with --gpus N)"});
    else if (capacity.gpus_per_place >= 0 && t.gpus > capacity.gpus_per_place)
      out.push_back({file, t.gpus_pos,
                     who + " needs " + gpu_count(t.gpus) + " but no one worker has more than " +
                         std::to_string(capacity.gpus_per_place) + " (the backend offers " +
                         std::to_string(capacity.gpus) + " across its workers)"});
    else if (!capacity.offers(t.executor))
      out.push_back({file, t.executor_pos,
                     who + " asks for executor '" + t.executor + "', which no slot offers"});
    if (out.size() > before) reported_group = &t.group;
  }
  return out;
}

}  // namespace sluice
