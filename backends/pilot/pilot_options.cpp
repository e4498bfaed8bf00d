#include "pilot_options.hpp"

#include <algorithm>
#include <cstdlib>

#include "slurm_backend.hpp"

namespace sluice::pilot {

Expected<Options> parse_options(const BackendOptions& in) {
  Options o;
  o.cpus = std::max(0, in.cpus);
  o.gpus = std::max(0, in.gpus);
  o.executors = in.executors;
  auto bad = [](const std::string& k, const std::string& v, const std::string& why) {
    return make_error(ErrorCode::kInvalidInput, "pilot option " + k + "=" + v + ": " + why);
  };
  auto positive = [&](const std::string& k, const std::string& v, int& out) -> Expected<void> {
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 1 || n > 100000) return bad(k, v, "not a positive number");
    out = static_cast<int>(n);
    return {};
  };
  auto duration = [&](const std::string& k, const std::string& v, Millis& out) -> Expected<void> {
    auto d = parse_duration(v);
    if (!d || d->count() <= 0) return bad(k, v, "not a duration (use 30s, 10m, 2h)");
    out = *d;
    return {};
  };
  for (const auto& [k, v] : in.extra) {
    Expected<void> r;
    if (k == "max_allocations") {
      r = positive(k, v, o.max_allocations);
    } else if (k == "nodes") {
      r = positive(k, v, o.nodes);
    } else if (k == "time_limit") {
      r = duration(k, v, o.time_limit);
    } else if (k == "idle_timeout") {
      r = duration(k, v, o.idle_timeout);
    } else if (k == "poll_interval") {
      r = duration(k, v, o.poll_interval);
    } else if (k == "heartbeat_timeout") {
      r = duration(k, v, o.heartbeat_timeout);
      if (r && o.heartbeat_timeout < Millis(1'000)) r = bad(k, v, "less than 1s");
    } else if (k == "gpus_per_worker") {
      r = positive(k, v, o.gpus_per_worker);
    } else if (k == "max_queued") {
      r = positive(k, v, o.window);
    } else if (k == "memory") {
      int mib = 0;
      r = positive(k, v, mib);
      o.memory_mib = mib;
    } else if (parse_placement_option(k, v, o.placement)) {
      // partition, account, qos, constraint, reservation, sbatch
    } else if (k == "command_timeout") {
      Millis checked{0};  // read by the factory (pilot_auto.cpp) for the driver
      r = duration(k, v, checked);
    } else if (k == "mode" || k == "driver" || k == "auto_threshold" || k == "cpus" ||
               k == "gpus" || k == "executors") {
      // Read by the factory or through BackendOptions.
    } else {
      return make_error(ErrorCode::kInvalidInput,
                        "unknown pilot option '" + k +
                            "' (known: mode, max_allocations, nodes, time_limit, idle_timeout, "
                            "gpus_per_worker, max_queued, memory, poll_interval, "
                            "heartbeat_timeout, auto_threshold, driver, command_timeout, "
                            "partition, account, qos, constraint, reservation, sbatch)");
    }
    if (!r) return tl::unexpected(r.error());
  }
  if (o.gpus_per_worker > 0 && (o.gpus == 0 || o.gpus % o.gpus_per_worker != 0))
    return make_error(ErrorCode::kInvalidInput,
                      "pilot option gpus_per_worker=" + std::to_string(o.gpus_per_worker) +
                          ": must divide gpus (" + std::to_string(o.gpus) + ") evenly");
  if (o.window == 0)
    o.window = std::max(1024, 2 * o.max_allocations * o.nodes * std::max(o.cpus, 64));
  return o;
}

const OptionTable& option_table() {
  static const OptionTable table = merge_option_tables(
      {
          {"max_allocations", "4", "Slurm allocations of workers at once", check_count(1, 100000)},
          {"nodes", "1", "nodes per allocation", check_count(1, 100000)},
          {"time_limit", "1h", "each allocation's time limit", check_duration()},
          {"idle_timeout", "1m", "an allocation with nothing to run ends after this",
           check_duration()},
          {"memory", "", "MiB of memory per node (default: Slurm's)", check_count(1, 100000)},
          {"gpus_per_worker", "",
           "G dividing gpus: one worker per G GPUs on each node (default: one worker per node)",
           check_count(1, 100000)},
          {"max_queued", "max(1024, 2 x max_allocations x nodes x max(cpus, 64))",
           "launches handed to the workers at once, in cores", check_count(1, 100000)},
          {"poll_interval", "2s", "how often Slurm is asked about the allocations",
           check_duration()},
          {"heartbeat_timeout", "30s", "a worker silent this long (at least 1s) is lost",
           check_duration()},
      },
      merge_option_tables(placement_option_table(), slurm_command_option_table()));
  return table;
}

const OptionTable& slurm_modes_option_table() {
  static const OptionTable table = merge_option_tables(
      merge_option_tables(
          {
              {"mode", "jobs",
               "jobs: one Slurm job per attempt; pilot: workers in allocations run them; auto: "
               "both, by max_exec_time",
               check_one_of({"jobs", "pilot", "auto"})},
              {"auto_threshold", "time_limit / 2",
               "auto mode: tasks with a longer max_exec_time become jobs", check_duration()},
              {"max_queued",
               "jobs: 1000; pilot: max(1024, 2 x max_allocations x nodes x max(cpus, 64))",
               "jobs: jobs in Slurm's queue at once; pilot: launches handed to workers at once",
               check_count(1, 10'000'000)},
              {"poll_interval", "jobs: 1s; pilot: 2s", "how often Slurm is asked",
               check_duration()},
          },
          slurm_option_table()),
      option_table());
  return table;
}

}  // namespace sluice::pilot
