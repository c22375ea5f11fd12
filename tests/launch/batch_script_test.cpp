// File: tests/launch/batch_script_test.cpp
// The batch script `albion submit` writes: its #SBATCH lines, the launch line inside, that bash
// accepts it, and each request it refuses. slurm_submit_test runs such scripts under real Slurm.
#include "launch/batch_script.h"

#include <gtest/gtest.h>

#include <fstream>

#include "runtime/base/error.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace albion::launch {
namespace {

BatchContext context(const std::string& root = "/scratch/uk/runs/tiny") {
  return {"/opt/albion/bin/albion", "/home/me/albion", "tiny", root + "/slurm", root + "/slurm/tiny.sbatch"};
}

BatchRequest cpu_request() {
  BatchRequest request;
  request.ranks_per_node = 2;
  request.train_arguments = {"/home/me/albion/recipes/tiny.ini", "--train.steps=100"};
  return request;
}

bool has_line(const std::string& script, const std::string& line) {
  return script.find("\n" + line + "\n") != std::string::npos;
}

TEST(BatchScript, CpuJobRunsItsRanksThroughLaunchAndSrun) {
  BatchRequest request = cpu_request();
  request.time_limit = "2:00:00";
  request.stop_before_s = 120;
  const std::string script = batch_script(request, context());
  EXPECT_EQ(script.rfind("#!/bin/bash\n", 0), 0u);
  for (const char* line : {"#SBATCH --job-name=tiny", "#SBATCH --nodes=1", "#SBATCH --ntasks-per-node=2",
                           "#SBATCH --time=2:00:00", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@120",
                           "#SBATCH --chdir=/home/me/albion", "#SBATCH --output=/scratch/uk/runs/tiny/slurm/%x-%j.out",
                           "#SBATCH --open-mode=append",
                           "/opt/albion/bin/albion launch --launcher srun -- train /home/me/albion/recipes/tiny.ini "
                           "--train.steps=100 &"}) {
    EXPECT_TRUE(has_line(script, line)) << line << "\n" << script;
  }
  EXPECT_EQ(script.find("--gpus-per-node"), std::string::npos);
  EXPECT_EQ(script.find("--partition"), std::string::npos);  // the cluster's default unless given
  EXPECT_NE(script.find("-lt 10 ]"), std::string::npos);      // the default restart budget
}

TEST(BatchScript, GpuJobAsksForOneRankPerGpuOnEveryNode) {
  BatchRequest request = cpu_request();
  request.ranks_per_node = 0;
  request.gpus_per_node = 4;
  request.nodes = 18;
  request.partition = "gb300";
  request.account = "proj-123";
  request.qos = "long";
  request.max_restarts = 3;
  request.sbatch_options = {"--constraint=nvl72", "--exclusive"};
  const std::string script = batch_script(request, context());
  for (const char* line : {"#SBATCH --nodes=18", "#SBATCH --ntasks-per-node=4", "#SBATCH --gpus-per-node=4",
                           "#SBATCH --partition=gb300", "#SBATCH --account=proj-123", "#SBATCH --qos=long",
                           "#SBATCH --constraint=nvl72", "#SBATCH --exclusive"}) {
    EXPECT_TRUE(has_line(script, line)) << line << "\n" << script;
  }
  EXPECT_NE(script.find("albion launch --launcher srun --gpus-per-node 4 -- train"), std::string::npos) << script;
  EXPECT_NE(script.find("-lt 3 ]"), std::string::npos);
}

TEST(BatchScript, PathsWithSpacesAreQuotedForSbatchAndTheShell) {
  BatchRequest request = cpu_request();
  request.train_arguments = {"/home/me/my recipes/tiny.ini"};
  const std::string script = batch_script(request, context("/scratch/uk/my runs"));
  EXPECT_TRUE(has_line(script, "#SBATCH --output=\"/scratch/uk/my runs/slurm/%x-%j.out\"")) << script;
  EXPECT_NE(script.find("train '/home/me/my recipes/tiny.ini' &"), std::string::npos) << script;

  EXPECT_THROW(batch_script(request, context("/scratch/uk/\"odd\"")), UsageError);
  EXPECT_THROW(batch_script(request, context("/scratch/uk/two\nlines")), UsageError);
}

TEST(BatchScript, BashAcceptsTheScript) {
  testing_support::TempDir dir;
  BatchRequest request = cpu_request();
  request.gpus_per_node = 2;
  request.time_limit = "1-00:00:00";
  const std::string path = dir / "job.sbatch";
  std::ofstream(path) << batch_script(request, context());
  const auto [status, output] = testing_support::run_command("bash -n " + path);
  EXPECT_EQ(status, 0) << output;
}

TEST(BatchScript, RefusesRequestsThatCannotMakeASensibleJob) {
  BatchRequest no_ranks = cpu_request();
  no_ranks.ranks_per_node = 0;
  EXPECT_THROW(batch_script(no_ranks, context()), UsageError);

  BatchRequest mismatched = cpu_request();
  mismatched.gpus_per_node = 4;
  mismatched.ranks_per_node = 8;
  EXPECT_THROW(batch_script(mismatched, context()), UsageError);

  BatchRequest no_recipe = cpu_request();
  no_recipe.train_arguments.clear();
  EXPECT_THROW(batch_script(no_recipe, context()), UsageError);

  BatchRequest too_short = cpu_request();
  too_short.time_limit = "5";  // 300 s, no longer than the default 300 s of warning
  EXPECT_THROW(batch_script(too_short, context()), UsageError);
  too_short.stop_before_s = 60;
  EXPECT_NO_THROW(batch_script(too_short, context()));
  too_short.time_limit = "2";  // 120 s: Slurm may signal 60 s early, so at the start
  EXPECT_THROW(batch_script(too_short, context()), UsageError);

  for (const char* option : {"--time=10", "--signal=USR1@60", "--no-requeue", "--output=/tmp/x", "-N 2", "constraint"}) {
    BatchRequest request = cpu_request();
    request.sbatch_options = {option};
    EXPECT_THROW(batch_script(request, context()), UsageError) << option;
  }
  BatchRequest zero_nodes = cpu_request();
  zero_nodes.nodes = 0;
  EXPECT_THROW(batch_script(zero_nodes, context()), UsageError);
}

TEST(BatchScript, ReadsEverySlurmTimeFormat) {
  EXPECT_EQ(slurm_time_seconds("90", "t"), 90 * 60);
  EXPECT_EQ(slurm_time_seconds("90:30", "t"), 90 * 60 + 30);
  EXPECT_EQ(slurm_time_seconds("2:00:00", "t"), 7200);
  EXPECT_EQ(slurm_time_seconds("1-12", "t"), 36 * 3600);
  EXPECT_EQ(slurm_time_seconds("1-00:30", "t"), 24 * 3600 + 30 * 60);
  EXPECT_EQ(slurm_time_seconds("2-01:02:03", "t"), 2 * 86400 + 3600 + 120 + 3);
  for (const char* bad : {"", "ten", "1:2:3:4", "1-", "-5", "5:", ":5", "1h", "1-2-3", "99999999999"}) {
    EXPECT_THROW(slurm_time_seconds(bad, "submit --time"), UsageError) << bad;
  }
}

}  // namespace
}  // namespace albion::launch
