#include "sluice/loader.hpp"

namespace sluice {

Diagnostics check_against_capacity(const Workflow& workflow, const Capacity& capacity) {
  Diagnostics out;
  const std::string& file = workflow.source_path;
  for (const TaskSpec& t : workflow.tasks) {
    // Matrix instances share their group's definition: report the group once.
    if (t.group != t.name && !out.empty() &&
        out.back().message.find("'" + t.group + "'") != std::string::npos)
      continue;
    const std::string who = "task '" + t.group + "'";
    if (t.cpus > capacity.cpus)
      out.push_back({file, t.cpus_pos,
                     who + " needs " + std::to_string(t.cpus) + " cpus but the backend offers " +
                         std::to_string(capacity.cpus)});
    else if (t.gpus > capacity.gpus)
      out.push_back({file, t.gpus_pos,
                     who + " needs " + std::to_string(t.gpus) + " gpus but the backend offers " +
                         std::to_string(capacity.gpus) + " (declare GPUs with --gpus N)"});
    else if (!capacity.offers(t.executor))
      out.push_back({file, t.executor_pos,
                     who + " asks for executor '" + t.executor + "', which no slot offers"});
  }
  return out;
}

}  // namespace sluice
