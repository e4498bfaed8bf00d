// What sbatch, squeue, scontrol and sacct print, as captured from Slurm 22.05, read by
// the pure functions of slurm_parse: no cluster needed.
#include <catch2/catch.hpp>

#include "slurm_parse.hpp"

using namespace sluice;
using namespace sluice::slurm;

TEST_CASE("sbatch: a job id only from the forms Slurm prints", "[unit][slurm]") {
  CHECK(parse_sbatch_output("Submitted batch job 4242\n").value() == "4242");
  CHECK(parse_sbatch_output("Submitted batch job 4242 on cluster alpha\n").value() == "4242");
  CHECK(parse_sbatch_output("4242\n").value() == "4242");        // --parsable
  CHECK(parse_sbatch_output("4242;alpha\n").value() == "4242");  // --parsable, federation
  CHECK(parse_sbatch_output("\n  4242  \n\n").value() == "4242");

  for (const char* bad :
       {"", "\n", "sbatch: error: Batch job submission failed: Invalid account\n",
        "Submitted batch job\n", "Submitted batch job abc\n", "42a\n", "-1\n", "4242;\n",
        "Submitted batch job 4242 maybe\n", "sbatch: warning: can't honor --mem\n4242\n",
        "Your job has been queued\n"}) {
    INFO("output: '" << bad << "'");
    auto id = parse_sbatch_output(bad);
    REQUIRE_FALSE(id);
    CHECK(id.error().code == ErrorCode::kBackend);
    CHECK(id.error().message.find("sbatch printed no job id") != std::string::npos);
  }
  // The bad output is named, so that a site wrapper printing something else is found.
  auto wrapped = parse_sbatch_output("Your job has been queued\n");
  CHECK(wrapped.error().message.find("'Your job has been queued'") != std::string::npos);
}

TEST_CASE("squeue -h -r -t all -o '%i|%T|%r|%A'", "[unit][slurm]") {
  // squeue -h -r -t all -o '%i|%T|%r|%A' -j 41,42,50 on a one-node 22.05 cluster.
  const char* out =
      "41|COMPLETED|None|41\n"
      "42_0|RUNNING|None|43\n"
      "42_1|RUNNING|None|44\n"
      "42_2|PENDING|Resources|42\n"
      "42_3|PENDING|Priority|42\n"
      "50|FAILED|NonZeroExitCode|50\n"
      "51|CANCELLED|None|51\n";
  auto jobs = parse_squeue(out);
  REQUIRE(jobs.size() == 7);
  CHECK(jobs["41"].state == "COMPLETED");
  CHECK(jobs["41"].raw_id == "41");
  CHECK(jobs["42_1"].state == "RUNNING");
  CHECK(jobs["42_1"].raw_id == "44");
  CHECK(jobs["42_2"].state == "PENDING");
  CHECK(jobs["42_2"].reason == "Resources");
  CHECK(jobs["50"].reason == "NonZeroExitCode");
  CHECK(jobs["50"].exit_code == -1);  // squeue shows none: scontrol is asked

  CHECK(parse_squeue("").empty());
  // Noise (a warning on stdout, a truncated line) is skipped, not misread.
  auto noisy = parse_squeue("squeue: warning: something\n60|RUNNING\n61|PENDING|None|61\n");
  REQUIRE(noisy.size() == 1);
  CHECK(noisy["61"].state == "PENDING");

  CHECK(is_unknown_job_error("slurm_load_jobs error: Invalid job id specified\n"));
  CHECK_FALSE(
      is_unknown_job_error("slurm_load_jobs error: Socket timed out on send/recv operation\n"));
}

TEST_CASE("scontrol show job -o: ExitCode, not DerivedExitCode", "[unit][slurm]") {
  const char* out =
      "JobId=50 JobName=sluice:20261207-052001-ab12:fail UserId=sluice(1000) "
      "GroupId=sluice(1000) MCS_label=N/A Priority=4294901757 Nice=0 Account=(null) "
      "QOS=normal JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 "
      "Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 DerivedExitCode=0:0 RunTime=00:00:01 "
      "TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-12-07T05:20:01 "
      "EligibleTime=2026-12-07T05:20:01 Partition=debug NodeList=vm BatchHost=vm NumNodes=1 "
      "NumCPUs=1 NumTasks=1 CPUs/Task=1 TRES=cpu=1,mem=1G,node=1,billing=1 "
      "Command=/tmp/run/tasks/fail/1/job.sh WorkDir=/tmp/run StdErr=/tmp/run/tasks/fail/1/stderr "
      "StdIn=/dev/null StdOut=/tmp/run/tasks/fail/1/stdout Power=\n";
  JobStatus st;
  REQUIRE(apply_scontrol_exit_code(out, st));
  CHECK(st.exit_code == 3);
  CHECK(st.signal == 0);

  JobStatus oom;
  REQUIRE(apply_scontrol_exit_code(
      "JobId=52 JobState=OUT_OF_MEMORY Reason=OutOfMemory DerivedExitCode=0:0 ExitCode=0:125\n",
      oom));
  CHECK(oom.exit_code == 0);
  CHECK(oom.signal == 125);

  JobStatus none;
  CHECK_FALSE(apply_scontrol_exit_code("slurm_load_jobs error: Invalid job id specified\n", none));
  CHECK_FALSE(apply_scontrol_exit_code("JobId=53 ExitCode=garbage\n", none));
  CHECK(none.exit_code == -1);
}

TEST_CASE("scontrol show config: MaxArraySize", "[unit][slurm]") {
  const char* out =
      "Configuration data as of 2026-12-07T05:20:00\n"
      "AccountingStorageBackupHost = (null)\n"
      "AccountingStorageEnforce = none\n"
      "MailProg                = /bin/mail\n"
      "MaxArraySize            = 4001\n"
      "MaxDBDMsgs              = 20008\n"
      "MaxJobCount             = 10000\n";
  CHECK(parse_max_array_size(out, 1001) == 4001);
  CHECK(parse_max_array_size("MaxJobCount = 10000\n", 1001) == 1001);
  CHECK(parse_max_array_size("MaxArraySize = lots\n", 1001) == 1001);
  CHECK(parse_max_array_size("", 7) == 7);
}

TEST_CASE("sacct -c -n -P -o jobid,state,exitcode", "[unit][slurm]") {
  const char* out =
      "41|COMPLETED|0:0\n"
      "45|FAILED|3:0\n"
      "46|CANCELLED by 1000|0:15\n"
      "47|NODE_FAIL|0:0\n"
      "47|COMPLETED|0:0\n";  // requeued after the node failed, then finished
  auto jobs = parse_sacct(out);
  REQUIRE(jobs.size() == 4);
  CHECK(jobs["41"].state == "COMPLETED");
  CHECK(jobs["41"].exit_code == 0);
  CHECK(jobs["45"].state == "FAILED");
  CHECK(jobs["45"].exit_code == 3);
  CHECK(jobs["46"].state == "CANCELLED");
  CHECK(jobs["46"].signal == 15);
  CHECK(jobs["47"].state == "COMPLETED");
  CHECK(parse_sacct("").empty());
}

TEST_CASE("Slurm errors worth asking again about", "[unit][slurm]") {
  const char* connect =
      "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
      "(connect failure)\n";
  const char* socket = "slurm_load_jobs error: Socket timed out on send/recv operation\n";
  CHECK(is_connect_failure(connect));
  CHECK(is_transient_error(connect));
  CHECK(is_transient_error(socket));
  // A socket timeout may have delivered the request: not a connect failure.
  CHECK_FALSE(is_connect_failure(socket));
  CHECK_FALSE(is_transient_error("slurm_load_jobs error: Invalid job id specified\n"));
  CHECK_FALSE(is_transient_error(
      "sbatch: error: Batch job submission failed: Invalid account or account/partition "
      "combination specified\n"));
}

TEST_CASE("array index expressions", "[unit][slurm]") {
  CHECK(expand_array_indexes("0-3") == std::vector<std::uint32_t>{0, 1, 2, 3});
  CHECK(expand_array_indexes("[0-5:2,9]%4") == std::vector<std::uint32_t>{0, 2, 4, 9});
}
