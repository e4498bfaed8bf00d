// `sluice worker` (the process a pilot allocation runs on each node; `APP worker` in a
// program built with the SDK, which runs its function tasks in-process) and `sluice workers
// RUN` (the allocations and workers of a run in pilot mode, from RUN_DIR/pilot/workers.json,
// which the run's coordinator keeps up to date).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "pilot_worker.hpp"
#include "sluice/duration.hpp"
#include "worker_runtime.hpp"

namespace sluice::cli {
namespace {

struct WorkerArgs {
  pilot::WorkerOptions o;
  std::string idle_timeout = "60s";
  std::string reconnect_timeout = "60s";
  std::string alloc_end;
};

Millis duration_arg(const std::string& flag, const std::string& v) {
  auto d = parse_duration(v);
  if (!d || d->count() <= 0)
    throw CliError(kExitBadInput, flag + " " + v + ": not a duration (use 30s, 10m)");
  return *d;
}

int cmd_worker(WorkerArgs& a) {
  a.o.idle_timeout = duration_arg("--idle-timeout", a.idle_timeout);
  a.o.reconnect_timeout = duration_arg("--reconnect-timeout", a.reconnect_timeout);
  if (!a.alloc_end.empty()) {
    char* end = nullptr;
    a.o.alloc_end_s = std::strtoll(a.alloc_end.c_str(), &end, 10);
    if (*end != '\0' || a.o.alloc_end_s < 0)
      throw CliError(kExitBadInput, "--alloc-end " + a.alloc_end + ": not epoch seconds");
  }
  const int status = pilot::serve_worker(a.o);
  if (worker::function_tasks_running()) {
    // Function threads cannot be stopped, and must not see static destructors run.
    std::fflush(nullptr);
    std::_Exit(status);
  }
  return status;
}

std::string remaining(std::int64_t end_s) {
  if (end_s <= 0) return "-";
  const std::int64_t left = end_s - now_us() / 1'000'000;
  return left <= 0 ? "0s" : format_duration(Millis(left * 1000));
}

int cmd_workers(const Globals& g, const std::string& id) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  RunRecord run = find_run(*store, id);
  const std::string path = store->run_dir(run.id) + "/pilot/workers.json";
  std::ifstream in(path);
  nlohmann::json j = in ? nlohmann::json::parse(in, nullptr, false) : nlohmann::json();
  if (!in || j.is_discarded()) {
    if (g.json) {
      std::printf("{\"run\": \"%s\", \"allocations\": [], \"workers\": []}\n", run.id.c_str());
      return kExitOk;
    }
    std::printf("run %s has no pilot workers (backend %s)\n", run.id.c_str(), run.backend.c_str());
    return kExitOk;
  }
  for (auto& w : j["workers"]) {
    const std::int64_t end = w.value("alloc_end_s", std::int64_t{0});
    const bool live = w.value("state", "") == "connected";
    w["remaining_s"] = live && end > 0
                           ? nlohmann::json(std::max<std::int64_t>(0, end - now_us() / 1'000'000))
                           : nlohmann::json();
  }
  j["run"] = run.id;
  if (g.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  std::printf("run %s: coordinator %s, %d queued, %d running (updated %s)\n", run.id.c_str(),
              j.value("coordinator", std::string("-")).c_str(), j.value("queued", 0),
              j.value("running", 0), format_time(j.value("updated_us", std::int64_t{0})).c_str());
  Table allocs({"ALLOCATION", "STATE", "WORKERS", "SUBMITTED", "RUN TIME", "ENDED"});
  for (const auto& a : j["allocations"]) {
    const std::int64_t started = a.value("started_us", std::int64_t{0});
    const std::int64_t ended = a.value("ended_us", std::int64_t{0});
    std::string reason = a.value("end_reason", "");
    allocs.add({a.value("job", ""), a.value("state", ""), std::to_string(a.value("workers", 0)),
                format_time(a.value("submitted_us", std::int64_t{0})),
                started ? format_span(started, ended ? ended : now_us()) : "-",
                ended ? format_time(ended) + (reason.empty() ? "" : " (" + reason + ")") : "-"});
  }
  allocs.print(stdout);
  std::printf("\n");
  Table workers({"WORKER", "HOST", "JOB", "CPUS", "GPUS", "RUNNING", "DONE", "REMAINING", "STATE"});
  for (const auto& w : j["workers"]) {
    const bool live = w.value("state", "") == "connected";
    workers.add({std::to_string(w.value("id", 0)), w.value("host", ""), w.value("job", ""),
                 std::to_string(w.value("cpus", 0)), std::to_string(w["gpus"].size()),
                 std::to_string(w.value("running", 0)),
                 std::to_string(w.value("completed", std::uint64_t{0})),
                 live ? remaining(w.value("alloc_end_s", std::int64_t{0})) : "-",
                 w.value("state", "")});
  }
  workers.print(stdout);
  return kExitOk;
}

}  // namespace

void add_pilot_commands(CLI::App& app, Globals& g) {
  static WorkerArgs w;
  auto* worker = app.add_subcommand(
      "worker", "serve a run's coordinator as a pilot worker (started by pilot allocations)");
  worker->add_option("--connect", w.o.connect,
                     "coordinator HOST:PORT (default: PILOT_DIR/address)");
  worker->add_option("--secret-file", w.o.secret_file,
                     "file with the run's secret "
                     "(default: PILOT_DIR/secret)");
  worker->add_option("--pilot-dir", w.o.pilot_dir, "the run's RUN_DIR/pilot directory");
  worker->add_option("--cpus", w.o.cpus, "cpu slots (default: SLURM_CPUS_ON_NODE, else cores)");
  worker->add_option("--gpus", w.o.gpus, "GPUs (default: detected)");
  worker->add_option("--memory", w.o.memory_mib, "memory offered, MiB (informative)");
  worker->add_option("--executors", w.o.executors, "executor labels offered (default: any)")
      ->delimiter(',');
  worker
      ->add_option("--workers-per-node", w.o.workers_per_node,
                   "workers on this node, one per GPU set (this one: SLURM_LOCALID)")
      ->check(CLI::Range(1, 4096));
  worker->add_option("--alloc-end", w.alloc_end, "epoch seconds at which the allocation ends");
  worker->add_option("--idle-timeout", w.idle_timeout, "ask to be released after this long idle");
  worker->add_option("--reconnect-timeout", w.reconnect_timeout,
                     "how long to look for a coordinator before leaving");
  worker->callback([&] { g_exit_code = cmd_worker(w); });

  static std::string run;
  auto* workers = app.add_subcommand("workers", "the pilot allocations and workers of a run");
  workers->add_option("run", run, "run id (or unique prefix) or workflow id")->required();
  workers->add_flag("--json", g.json, "machine-readable output");
  workers->callback([&] { g_exit_code = cmd_workers(g, run); });
}

}  // namespace sluice::cli
