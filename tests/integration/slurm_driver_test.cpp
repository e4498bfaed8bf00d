// Which Slurm driver a run uses, on the real cluster: libslurm when the controller runs
// the release this sluice was built for, the command-line tools otherwise. The other
// release is played by an `scontrol` first on PATH that reports 24.11.1 as the
// controller's version (and passes everything else to the real one), as a site that
// upgraded Slurm would; the run then goes through sbatch/squeue and says so in
// `--verbose`, backend.json and `sluice doctor`.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "support/fake_commands.hpp"
#include "support/run_queries.hpp"
#include "support/slurm.hpp"

using namespace sluice::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// DIR/scontrol: the real one, but `show config` says the controller runs `version`.
fs::path fake_scontrol(const ScratchDir& dir, const std::string& version) {
  std::string real = shell_output("command -v scontrol");
  while (!real.empty() && (real.back() == '\n' || real.back() == ' ')) real.pop_back();
  REQUIRE(!real.empty());
  const fs::path bin = dir / "other-slurm";
  fs::create_directories(bin);
  write_file(
      bin / "scontrol",
      "#!/bin/sh\n"
      "if [ \"$1\" = show ] && [ \"$2\" = config ]; then\n"
      "  out=$(" +
          real +
          " \"$@\") || exit $?\n"
          "  printf '%s\\n' \"$out\" | sed 's/^SLURM_VERSION *=.*/SLURM_VERSION           = " +
          version +
          "/'\n"
          "  exit 0\n"
          "fi\n"
          "exec " +
          real + " \"$@\"\n");
  ::chmod((bin / "scontrol").c_str(), 0755);
  return bin;
}

json backend_record(const ScratchDir& dir, const std::string& run_id) {
  return json::parse(read_file(dir / (".sluice/runs/" + run_id + "/backend.json")));
}

}  // namespace

TEST_CASE("a controller of another Slurm release is driven through the command-line tools",
          "[slurm]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  const fs::path bin = fake_scontrol(dir, "24.11.1");
  PathFirst path(bin);

  auto r = run_sluice({"run", kExamples + "diamond.toml", "--backend", "slurm", "-O",
                       "poll_interval=200ms", "-q", "--verbose"},
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("sluice: backend slurm: driver cli: ") != std::string::npos);
#ifdef SLUICE_WITH_LIBSLURM
  CHECK(r.err.find("the controller runs Slurm 24.11.1 but this sluice was built for") !=
        std::string::npos);
#endif
  const json record = backend_record(dir, run_id_of(r));
  CHECK(record["detail"].get<std::string>().rfind("driver cli: ", 0) == 0);
  CHECK(record["options"].find("driver") == record["options"].end());  // chosen, not fixed

  auto doctor = run_sluice({"doctor", "--json"}, dir.path());
  INFO(doctor.out);
  auto d = json::parse(doctor.out);
  CHECK(d["slurm"]["driver"] == "cli");
  CHECK(d["slurm"]["controller_version"] == "24.11.1");

#ifdef SLUICE_WITH_LIBSLURM
  // Asked for by name, libslurm is refused before anything is submitted.
  auto named = run_sluice(
      {"run", kExamples + "diamond.toml", "--backend", "slurm", "-O", "driver=libslurm", "-q"},
      dir.path());
  INFO(named.out << named.err);
  CHECK(named.exit_code == 2);
  CHECK(named.err.find("driver=libslurm: the controller runs Slurm 24.11.1") != std::string::npos);
#endif
}

TEST_CASE("the controller's own release is driven through libslurm, and says so", "[slurm]") {
  REQUIRE_SLURM();
#ifndef SLUICE_WITH_LIBSLURM
  SLUICE_SKIP("this sluice was built without libslurm");
#endif
  ScratchDir dir;
  auto r = run_sluice({"run", kExamples + "diamond.toml", "--backend", "slurm", "-O",
                       "poll_interval=200ms", "-q", "-v"},
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("sluice: backend slurm: driver libslurm: the controller runs Slurm ") !=
        std::string::npos);
  CHECK(backend_record(dir, run_id_of(r))["detail"].get<std::string>().rfind("driver libslurm",
                                                                             0) == 0);
  auto d = json::parse(run_sluice({"doctor", "--json"}, dir.path()).out);
  CHECK(d["slurm"]["driver"] == "libslurm");
}
