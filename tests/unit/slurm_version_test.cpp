// Reading Slurm's version and the outputs the command-line driver relies on, as Slurm
// 20.11 to 24.11 print them, and the rule that picks the driver. The 22.05 texts are
// captured from the cluster here; the others follow each release's man pages (sbatch,
// squeue, sacct, scontrol, sinfo), whose formats these options keep stable: the samples
// differ in versions, states and cluster names, which is where releases differ.
#include <catch2/catch.hpp>

#include <string>

#include "driver_choice.hpp"
#include "slurm_parse.hpp"
#include "slurm_version.hpp"

using namespace sluice;
using namespace sluice::slurm;

namespace {

struct Release {
  const char* version;  // as sinfo --version prints it
  SlurmVersion expected;
};

const Release kReleases[] = {
    {"slurm 20.11.9", {20, 11, 9}},      {"slurm 21.08.8-2", {21, 8, 8}},
    {"slurm-wlm 22.05.8", {22, 5, 8}},   {"slurm 23.02.7", {23, 2, 7}},
    {"slurm 23.11.4", {23, 11, 4}},      {"slurm 24.05.1", {24, 5, 1}},
    {"slurm 24.11.0-0rc1", {24, 11, 0}},
};

// `scontrol show config` as every release from 20.11 on begins it.
std::string show_config(const std::string& version, int max_array) {
  return "Configuration data as of 2024-06-01T10:00:00\n"
         "AccountingStorageBackupHost = (null)\n"
         "ClusterName             = alpha\n"
         "MaxArraySize            = " +
         std::to_string(max_array) +
         "\n"
         "SLURM_CONF              = /etc/slurm/slurm.conf\n"
         "SLURM_VERSION           = " +
         version +
         "\n"
         "SLURMCTLD_ADDR          = (null)\n"
         "SLURMCTLD_PORT          = 6817\n";
}

bool same(const SlurmVersion& a, const SlurmVersion& b) {
  return a.major == b.major && a.minor == b.minor && a.micro == b.micro;
}

}  // namespace

TEST_CASE("every release's version string is read, prefixes and suffixes aside", "[unit][slurm]") {
  for (const Release& r : kReleases) {
    INFO(r.version);
    auto v = parse_slurm_version(r.version);
    REQUIRE(v);
    CHECK(same(*v, r.expected));
    // scontrol show config reports the controller's, as "SLURM_VERSION = X".
    const std::string text = std::string(r.version).substr(std::string(r.version).find(' ') + 1);
    auto c = controller_version_from_config(show_config(text, 1001));
    REQUIRE(c);
    CHECK(same(*c, r.expected));
    CHECK(parse_max_array_size(show_config(text, 40001), 1001) == 40001);
  }
  CHECK(parse_slurm_version("22.05")->str() == "22.05.0");
  CHECK(parse_slurm_version("slurm 24.05.1")->release() == "24.05");
  CHECK(parse_slurm_version("slurm 24.05.1")->str() == "24.05.1");
  for (const char* none : {"", "slurm", "slurm version unknown", "24", "v.1", "24.x"}) {
    INFO(none);
    CHECK_FALSE(parse_slurm_version(none));
  }
  CHECK_FALSE(controller_version_from_config("SLURM_VERSION_X = 1.2\nClusterName = a\n"));
  CHECK_FALSE(controller_version_from_config(""));
  // SLURM_VERSION_NUMBER / slurm_api_version()
  CHECK(same(version_from_number((22 << 16) + (5 << 8) + 8), {22, 5, 8}));
  CHECK(same(version_from_number(0x180b00), {24, 11, 0}));
}

TEST_CASE("the CLI driver's formats read alike in every release", "[unit][slurm]") {
  for (const Release& r : kReleases) {
    INFO(r.version);
    // sbatch --parsable: "ID" or, on a federation or with --clusters, "ID;CLUSTER".
    CHECK(parse_sbatch_output("812\n").value() == "812");
    CHECK(parse_sbatch_output("812;alpha\n").value() == "812");
    // squeue -h -r -t all -o '%i|%T|%r|%A': array elements one per line with -r.
    auto q = parse_squeue(
        "812|COMPLETED|None|812\n"
        "813_0|RUNNING|None|814\n"
        "813_1|PENDING|Resources|813\n"
        "815|OUT_OF_MEMORY|OutOfMemory|815\n");
    REQUIRE(q.size() == 4);
    CHECK(q["813_1"].reason == "Resources");
    CHECK(q["815"].state == "OUT_OF_MEMORY");
    // sacct -c -n -P -o jobid,state,exitcode: "CANCELLED by UID" since long before 20.11.
    auto s = parse_sacct("812|COMPLETED|0:0\n813_0|CANCELLED by 1000|0:15\n814|FAILED|3:0\n");
    CHECK(s["813_0"].state == "CANCELLED");
    CHECK(s["813_0"].signal == 15);
    CHECK(s["814"].exit_code == 3);
    // scontrol show job -o: ExitCode=, never DerivedExitCode=.
    JobStatus st;
    CHECK(apply_scontrol_exit_code(
        "JobId=814 JobName=t UserId=u(1000) JobState=FAILED Reason=NonZeroExitCode "
        "DerivedExitCode=0:0 ExitCode=3:0 RunTime=00:00:01\n",
        st));
    CHECK(st.exit_code == 3);
  }
}

namespace {

DriverFacts facts_for(const char* requested, const char* built, const char* loaded,
                      const char* controller) {
  DriverFacts f;
  f.requested = requested;
  if (built) f.libslurm.built_for = parse_slurm_version(built);
  if (loaded) f.libslurm.loaded = parse_slurm_version(loaded);
  if (!loaded) f.libslurm.error = "libslurm.so.38: cannot open shared object file";
  if (controller)
    f.controller = parse_slurm_version(controller);
  else
    f.controller_error = "scontrol show config: exit 1: Unable to contact slurm controller";
  return f;
}

}  // namespace

TEST_CASE("libslurm drives only a controller of the release it was built for", "[unit][slurm]") {
  // Built for 22.05: a 22.05 controller of any bug-fix release takes libslurm.
  for (const char* same_release : {"22.05.8", "22.05.2", "22.05.11"}) {
    auto c = choose_driver(facts_for("auto", "22.05.8", "22.05.8", same_release));
    REQUIRE(c);
    CHECK(c->driver == "libslurm");
    CHECK(c->reason.find(same_release) != std::string::npos);
  }
  // Every other release from 20.11 to 24.11: the command-line tools, saying why.
  for (const Release& r : kReleases) {
    if (std::string(r.version).find("22.05") != std::string::npos) continue;
    const std::string v = parse_slurm_version(r.version)->str();
    auto c = choose_driver(facts_for("auto", "22.05.8", "22.05.8", v.c_str()));
    REQUIRE(c);
    CHECK(c->driver == "cli");
    CHECK(c->reason.find("the controller runs Slurm " + v) != std::string::npos);
    CHECK(c->reason.find("built for 22.05") != std::string::npos);
    // Asked for by name, libslurm is refused rather than swapped for cli.
    auto named = choose_driver(facts_for("libslurm", "22.05.8", "22.05.8", v.c_str()));
    REQUIRE_FALSE(named);
    CHECK(named.error().code == ErrorCode::kInvalidInput);
    CHECK(named.error().message.find("use driver=cli") != std::string::npos);
  }
}

TEST_CASE("without a usable libslurm or a known controller the CLI driver serves",
          "[unit][slurm]") {
  auto unknown = choose_driver(facts_for("auto", "22.05.8", "22.05.8", nullptr));
  REQUIRE(unknown);
  CHECK(unknown->driver == "cli");
  CHECK(unknown->reason.find("Unable to contact slurm controller") != std::string::npos);

  auto unopened = choose_driver(facts_for("auto", "22.05.8", nullptr, "22.05.8"));
  REQUIRE(unopened);
  CHECK(unopened->driver == "cli");
  CHECK(unopened->reason.find("cannot be opened here") != std::string::npos);

  // A libslurm.so.38 of another release than the headers (a site's rebuilt library).
  auto other_lib = choose_driver(facts_for("auto", "22.05.8", "23.02.1", "22.05.8"));
  REQUIRE(other_lib);
  CHECK(other_lib->driver == "cli");
  CHECK(other_lib->reason.find("opened here is Slurm 23.02.1") != std::string::npos);

  auto not_built = choose_driver(facts_for("auto", nullptr, nullptr, "24.11.1"));
  REQUIRE(not_built);
  CHECK(not_built->driver == "cli");

  auto cli = choose_driver(facts_for("cli", "22.05.8", "22.05.8", "22.05.8"));
  REQUIRE(cli);
  CHECK(cli->driver == "cli");
  CHECK(cli->reason == "driver=cli was asked for");

  CHECK_FALSE(choose_driver(facts_for("slurmrestd", "22.05.8", "22.05.8", "22.05.8")));
}
