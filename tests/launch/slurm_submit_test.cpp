// File: tests/launch/slurm_submit_test.cpp
// `albion submit` under a real Slurm (munged, slurmctld and slurmd started by
// slurm_test_cluster.sh in a temporary directory, two nodes on this machine): a job of one rank
// on each node runs through sbatch, srun and PMIx; the same job stopped before its time limit (the signal Slurm's --signal=B:USR1 sends), then
// pre-empted by a job of a higher-priority partition, resumes twice and ends with the uninterrupted
// job's losses bit for bit; and a job with a two-minute time limit is stopped and requeued by
// Slurm's own signal.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <vector>

#include "runtime/base/check.h"
#include "tests/support/checkpoint_steps.h"
#include "tests/support/eventually.h"
#include "tests/support/run_albion.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace albion {
namespace {

using namespace std::chrono_literals;
using testing_support::TempDir;

const std::string kClusterScript = std::string(ALBION_SOURCE_DIR) + "/tests/launch/slurm_test_cluster.sh";

// The cluster lives as long as the object; its logs are printed when a test fails.
class SlurmCluster {
 public:
  SlurmCluster() {
    const auto [status, output] = testing_support::run_command("bash " + kClusterScript + " start " + dir_.path());
    started_ = status == 0;
    start_output_ = output;
  }
  ~SlurmCluster() { testing_support::run_command("bash " + kClusterScript + " stop " + dir_.path()); }

  bool started() const { return started_; }
  const std::string& start_output() const { return start_output_; }
  // PMIx's hash store, not its shared-memory one: see slurm_test_cluster.sh.
  std::string environment() const { return "SLURM_CONF=" + dir_ / "slurm.conf" + " PMIX_MCA_gds=hash"; }

  // A Slurm client command against this cluster.
  std::pair<int, std::string> run(const std::string& command) const {
    return testing_support::run_command(environment() + " " + command);
  }
  // A field of `scontrol show job` ("JobState", "Restarts", "ExitCode").
  std::string job_field(const std::string& job, const std::string& field) const {
    const std::string shown = run("scontrol show job -o " + job).second;
    std::smatch match;
    if (!std::regex_search(shown, match, std::regex("\\b" + field + "=(\\S+)"))) return "";
    return match[1].str();
  }
  std::string logs() const {
    return run("tail -n 20 " + dir_ / "log/slurmctld.log " + dir_ / "log/slurmd.log").second;
  }

 private:
  TempDir dir_;  // no spaces: slurm.conf cannot quote paths
  bool started_ = false;
  std::string start_output_;
};

// Slurm's state changes in seconds: poll it every 100 ms.
bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit) {
  return testing_support::eventually(done, limit, 100ms);
}

// step -> loss, the last record of each step (a resumed job repeats the steps after its checkpoint).
std::map<long, std::string> losses(const std::string& metrics) {
  std::map<long, std::string> by_step;
  std::ifstream in(metrics);
  const std::regex record("^\\{\"step\":(\\d+),\"loss\":([^,]+),");
  std::smatch match;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, match, record)) by_step[std::stol(match[1].str())] = match[2].str();
  }
  return by_step;
}

// The steps at which the job's ranks stopped on request, in order.
std::vector<std::string> stop_steps(const std::string& output) {
  const std::regex stop("albion \\[r0 [^\n]*stopping at step (\\d+) as requested");
  std::vector<std::string> steps;
  for (auto it = std::sregex_iterator(output.begin(), output.end(), stop); it != std::sregex_iterator(); ++it) {
    steps.push_back((*it)[1].str());
  }
  return steps;
}

class SlurmSubmit : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 || testing_support::run_command("command -v slurmctld slurmd munged sbatch").first != 0) {
      // CI installs Slurm (scripts/setup.sh) and runs as root: there this test must run.
      ASSERT_EQ(std::getenv("CI"), nullptr) << "Slurm is not installed, or this is not root, on CI";
      GTEST_SKIP() << "needs root and Slurm (slurmctld, slurmd, munge)";
    }
    cluster_ = std::make_unique<SlurmCluster>();
    ASSERT_TRUE(cluster_->started()) << cluster_->start_output();
    ASSERT_EQ(testing_support::run_albion("keys generate --out " + (runs_ / "kek")).exit_code, 0);
    policy_ = runs_.write("policy.json", R"({"format": "albion-residency-policy/1",
      "roots": [{"path": ".", "jurisdiction": "UK"}]})");
  }
  void TearDown() override {
    if (HasFailure() && cluster_) std::cout << "slurm logs:\n" << cluster_->logs() << "\n";
  }

  // `albion submit OPTIONS` of the tiny run on two nodes, one rank each, in runs_/NAME; returns the
  // job id.
  std::string submit(const std::string& name, long steps, const std::string& options = "--time 30 --stop-before 60") {
    const std::string run = runs_ / ("my runs/" + name);  // a space, which sbatch lines must quote
    const auto outcome = testing_support::run_albion(
        str_cat("submit --nodes 2 --ranks-per-node 1 ", options, " -- train ", ALBION_SOURCE_DIR,
                "/recipes/tiny.ini --run.dir='", run, "' --data.dataset=", runs_ / "data", " --data.inputs=",
                ALBION_SOURCE_DIR, "/recipes/corpus/austen/persuasion.txt --train.micro_batch=4 --train.steps=", steps,
                " --eval.interval=0 --eval.sample_tokens=0 --log.interval=1 --log.tensorboard=false "
                "--optim.warmup_steps=1 --checkpoint.interval=5 --checkpoint.key=file:",
                runs_ / "kek", " --checkpoint.policy=", policy_),
        cluster_->environment());
    EXPECT_EQ(outcome.exit_code, 0) << outcome.output;
    std::smatch match;
    EXPECT_TRUE(std::regex_search(outcome.output, match, std::regex("submitted job (\\d+)"))) << outcome.output;
    return match.empty() ? "" : match[1].str();
  }
  std::string run_dir(const std::string& name) const { return runs_ / ("my runs/" + name); }
  std::string job_output(const std::string& name, const std::string& job) const {
    return testing_support::read_bytes(run_dir(name) + "/slurm/tiny-" + job + ".out");
  }

  bool finished(const std::string& job) const {
    const std::string state = cluster_->job_field(job, "JobState");
    return state == "COMPLETED" || state == "FAILED" || state == "CANCELLED" || state == "TIMEOUT";
  }
  // Requeued `restarts` times and running again (the test cluster holds a requeued job back 10 s).
  bool restarted(const std::string& job, int restarts) {
    return wait_until([&] {
      return cluster_->job_field(job, "Restarts") == std::to_string(restarts) &&
             cluster_->job_field(job, "JobState") == "RUNNING";
    }, 90s);
  }

  TempDir runs_;
  std::string policy_;
  std::unique_ptr<SlurmCluster> cluster_;
};

TEST_F(SlurmSubmit, AJobStoppedBeforeItsTimeLimitAndPreemptedResumesToTheUninterruptedLosses) {
  constexpr long kSteps = 60;
  const std::string reference = submit("reference", kSteps);
  ASSERT_FALSE(reference.empty());
  ASSERT_TRUE(wait_until([&] { return finished(reference); }, 180s)) << job_output("reference", reference);
  ASSERT_EQ(cluster_->job_field(reference, "JobState"), "COMPLETED") << job_output("reference", reference);
  EXPECT_EQ(cluster_->job_field(reference, "ExitCode"), "0:0");
  const std::map<long, std::string> expected = losses(run_dir("reference") + "/metrics.jsonl");
  ASSERT_EQ(expected.size(), static_cast<std::size_t>(kSteps)) << job_output("reference", reference);
  EXPECT_NE(job_output("reference", reference).find("training on 2 ranks (2 node(s))"), std::string::npos)
      << job_output("reference", reference);

  const std::string job = submit("stopped", kSteps);
  const std::string checkpoints = run_dir("stopped") + "/checkpoints";
  // 1. Near the time limit Slurm signals the batch script (--signal=B:USR1@60); send it now.
  ASSERT_TRUE(wait_until([&] { return testing_support::newest_committed_step(checkpoints) >= 10; }, 120s))
      << job_output("stopped", job);
  ASSERT_EQ(cluster_->run("scancel --batch --signal=USR1 " + job).first, 0);
  ASSERT_TRUE(restarted(job, 1)) << job_output("stopped", job);
  const long first_stop = testing_support::newest_committed_step(checkpoints);

  // 2. Pre-emption: a job in the higher-priority partition needs the node. Slurm sends SIGTERM to
  //    every process of this job, requeues it, runs the other, then this one again.
  ASSERT_TRUE(wait_until([&] { return testing_support::newest_committed_step(checkpoints) >= first_stop + 10; }, 120s))
      << job_output("stopped", job);
  ASSERT_EQ(cluster_->run("sbatch --partition=urgent --ntasks=2 --output=/dev/null --wrap 'sleep 1'").first, 0);
  ASSERT_TRUE(restarted(job, 2)) << job_output("stopped", job);

  ASSERT_TRUE(wait_until([&] { return finished(job); }, 180s)) << job_output("stopped", job);
  const std::string output = job_output("stopped", job);
  EXPECT_EQ(cluster_->job_field(job, "JobState"), "COMPLETED") << output;
  EXPECT_EQ(cluster_->job_field(job, "ExitCode"), "0:0");
  EXPECT_NE(output.find("start 3,"), std::string::npos) << output;
  EXPECT_NE(output.find("requeueing job " + job + " to resume"), std::string::npos) << output;
  EXPECT_NE(output.find("DUE TO PREEMPTION ***"), std::string::npos) << output;
  EXPECT_NE(output.find("stopped by Slurm (pre-emption or scancel) after saving a checkpoint"), std::string::npos)
      << output;
  // Each stop saved a checkpoint where it stopped, and the next start resumed from it.
  const std::vector<std::string> stops = stop_steps(output);
  EXPECT_EQ(stops.size(), 2u) << output;
  for (const std::string& step : stops) {
    EXPECT_NE(output.find("at step " + step + " (loaded"), std::string::npos) << step << "\n" << output;
  }
  EXPECT_EQ(losses(run_dir("stopped") + "/metrics.jsonl"), expected) << output;
}

// Slurm's own time limit. With --time 2 (minutes) and --stop-before 40, Slurm signals the batch
// script 40 s before the limit (up to a minute earlier, as its checks come round); the job stops
// at a checkpoint and requeues itself once (--max-restarts 1), resumes, is signalled again, and
// this time ends without a requeue. Slurm never has to kill it for the time limit.
TEST_F(SlurmSubmit, TheTimeLimitStopsTheJobAtACheckpointAndRequeuesItUpToMaxRestarts) {
  const std::string job = submit("timed", 1000000, "--time 2 --stop-before 40 --max-restarts 1");
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_until([&] { return finished(job); }, 280s)) << job_output("timed", job);
  const std::string output = job_output("timed", job);
  EXPECT_EQ(cluster_->job_field(job, "JobState"), "FAILED") << output;  // stopped short of its steps
  EXPECT_EQ(cluster_->job_field(job, "ExitCode"), "130:0") << output;
  EXPECT_EQ(cluster_->job_field(job, "Restarts"), "1") << output;
  EXPECT_NE(output.find("requeueing job " + job + " to resume"), std::string::npos) << output;
  EXPECT_NE(output.find("not requeued: 1 restarts reached. Resume with: sbatch "), std::string::npos) << output;
  EXPECT_EQ(output.find("TIME LIMIT"), std::string::npos) << output;
  const std::vector<std::string> stops = stop_steps(output);
  ASSERT_EQ(stops.size(), 2u) << output;
  EXPECT_NE(output.find("at step " + stops[0] + " (loaded"), std::string::npos) << output;
}

TEST_F(SlurmSubmit, SbatchRefusingTheJobIsOneLineAndExitCodeTwo) {
  const auto outcome = testing_support::run_albion(
      str_cat("submit --nodes 2 --ranks-per-node 1 --partition=nosuch -- train ", ALBION_SOURCE_DIR,
              "/recipes/tiny.ini --run.dir=", runs_ / "refused"),
      cluster_->environment());
  EXPECT_EQ(outcome.exit_code, 2) << outcome.output;
  EXPECT_NE(outcome.output.find("albion: error: submit: sbatch refused"), std::string::npos) << outcome.output;
  EXPECT_NE(outcome.output.find("Invalid partition"), std::string::npos) << outcome.output;
}

}  // namespace
}  // namespace albion
