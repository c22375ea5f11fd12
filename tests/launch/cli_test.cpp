// File: tests/launch/cli_test.cpp
// The `albion` executable as a user meets it: exit codes and one-line errors of the CLI contract,
// --help for every subcommand, honest "not implemented" answers, and a healthy `doctor`.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "launch/build_info.h"
#include "tests/support/run_albion.h"
#include "tests/support/temp_dir.h"

namespace {

using albion::testing_support::count_lines;
using albion::testing_support::Outcome;
using albion::testing_support::run_albion;

const char* const kSubcommands[] = {"train", "launch", "submit", "data", "ckpt", "generate", "eval", "keys", "doctor",
                                    "version"};

TEST(Cli, HelpListsEverySubcommand) {
  Outcome run = run_albion("--help");
  EXPECT_EQ(run.exit_code, 0);
  for (const char* name : kSubcommands) EXPECT_NE(run.output.find(std::string("  ") + name), std::string::npos) << name;
}

TEST(Cli, UnknownSubcommandIsOneLineUsageErrorWithSuggestion) {
  Outcome run = run_albion("trian");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(count_lines(run.output), 1) << run.output;
  EXPECT_EQ(run.output.rfind("albion: error: unknown subcommand 'trian' (did you mean 'train'?)", 0), 0u)
      << run.output;
  EXPECT_NE(run.output.find("albion --help"), std::string::npos);
}

TEST(Cli, UnknownOptionIsUsageError) {
  Outcome run = run_albion("doctor --colectives");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(run.output, "albion: error: doctor: unknown option '--colectives' (did you mean '--collectives'?)\n");
  EXPECT_EQ(run_albion("--frobnicate").exit_code, 2);
}

TEST(Cli, MissingSubcommandPrintsUsageAndFails) {
  Outcome run = run_albion("");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_NE(run.output.find("usage: albion <subcommand>"), std::string::npos);
}

TEST(Cli, EverySubcommandHasHelp) {
  for (const char* name : kSubcommands) {
    Outcome run = run_albion(std::string(name) + " --help");
    EXPECT_NE(run.output.find(std::string("usage: albion ") + name), std::string::npos) << run.output;
    EXPECT_EQ(run.exit_code, 0) << name;
  }
  // Verbs with required options still answer --help (and -h) first.
  for (const char* verb : {"data prepare --help", "data inspect -h"}) {
    Outcome run = run_albion(verb);
    EXPECT_EQ(run.exit_code, 0) << verb << ": " << run.output;
    EXPECT_NE(run.output.find("usage: albion data"), std::string::npos) << run.output;
  }
}

TEST(Cli, LaunchWithoutACommandFailsWithOneLine) {
  Outcome run = run_albion("launch -n 2");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(count_lines(run.output), 1) << run.output;
  EXPECT_NE(run.output.find("albion: error: launch: missing the albion subcommand after '--'"), std::string::npos)
      << run.output;
}

// A recipe every rank would refuse is refused once by the launcher, before any rank starts.
TEST(Cli, LaunchChecksATrainRecipeAgainstTheRankCount) {
  const std::string tiny = std::string(ALBION_SOURCE_DIR) + "/recipes/tiny.ini";
  for (const char* dry_run : {"--dry-run ", ""}) {
    Outcome run = run_albion(std::string("launch ") + dry_run + "-n 4 -- train " + tiny);
    EXPECT_EQ(run.exit_code, 2) << run.output;
    EXPECT_EQ(count_lines(run.output), 1) << run.output;
    EXPECT_NE(run.output.find("data-parallel ranks = 16 x 128 x 4"), std::string::npos) << run.output;
  }
  Outcome run = run_albion("launch -n 2 -- train " + tiny + " --trian.steps=3");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_EQ(count_lines(run.output), 1) << run.output;
  EXPECT_NE(run.output.find("trian.steps"), std::string::npos) << run.output;
  EXPECT_EQ(run_albion("launch --dry-run -n 2 -- train " + tiny).exit_code, 0);
}

// --dry-run prints the batch script and writes nothing; a key from the environment is refused,
// since sbatch would copy it into Slurm's job state.
TEST(Cli, SubmitDryRunPrintsTheScriptAndRefusesEnvironmentKeys) {
  const std::string recipe = std::string(ALBION_SOURCE_DIR) + "/recipes/tiny.ini";
  const std::string tiny = recipe + " --run.dir=/nonexistent/run";
  Outcome run = run_albion("submit --dry-run --gpus-per-node 4 --nodes 2 --time 2:00:00 -- train " + tiny +
                           " --train.global_batch_tokens=16384");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("#SBATCH --gpus-per-node=4\n"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("would write /nonexistent/run/slurm/tiny.sbatch"), std::string::npos) << run.output;
  EXPECT_FALSE(std::filesystem::exists("/nonexistent/run"));

  run = run_albion("submit --dry-run --ranks-per-node 2 -- train " + tiny +
                   " --checkpoint.interval=10 --checkpoint.key=env:ALBION_KEK --checkpoint.policy=x.json");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("albion: error: submit: recipe key 'checkpoint.key' = env:ALBION_KEK"), std::string::npos)
      << run.output;

  // The residency policy and a key file are checked before the job is queued, not when it starts.
  albion::testing_support::TempDir dir;
  const std::string policy = dir.write("policy.json", R"({"format": "albion-residency-policy/1",
    "roots": [{"path": "uk", "jurisdiction": "UK"}]})");
  run = run_albion("submit --dry-run --ranks-per-node 2 -- train " + tiny + " --checkpoint.interval=10 " +
                   "--checkpoint.key=file:" + (dir / "kek") + " --checkpoint.policy=" + policy);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("/nonexistent/run/checkpoints"), std::string::npos) << run.output;
  run = run_albion("submit --dry-run --ranks-per-node 2 -- train " + recipe + " --run.dir=" + (dir / "uk/run") +
                   " --checkpoint.interval=10 --checkpoint.key=file:" + (dir / "kek") + " --checkpoint.policy=" + policy);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find(dir / "kek"), std::string::npos) << run.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "uk/run"));

  run = run_albion("submit --ranks-per-node 2 -- train " + tiny + " --dry-run");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("belongs before the '--'"), std::string::npos) << run.output;
}

// The command line the launcher prints passes a PKCS#11 PIN on to the ranks but does not show it;
// nor does a fatal error that quotes it.
TEST(Cli, LaunchAndErrorsDoNotShowAPkcs11Pin) {
  const std::string key = "'--checkpoint.key=pkcs11:token=t;object=k?module-path=/m.so&pin-value=97531'";
  Outcome run = run_albion(std::string("launch --dry-run -n 2 -- train ") + ALBION_SOURCE_DIR + "/recipes/tiny.ini " + key);
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("pin-value=(not shown)"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("97531"), std::string::npos) << run.output;
  // A batch script is a file on disk: submit refuses to write an inline PIN into one.
  run = run_albion(std::string("submit --dry-run --ranks-per-node 2 -- train ") + ALBION_SOURCE_DIR +
                   "/recipes/tiny.ini " + key);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_EQ(count_lines(run.output), 1) << run.output;
  EXPECT_NE(run.output.find("use pin-source=file:PATH"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("97531"), std::string::npos) << run.output;
  run = run_albion("ckpt verify /nonexistent --key 'pkcs11:token=t;object=k?module-path=/m.so&pin-value=97531&x=1'");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(run.output.find("97531"), std::string::npos) << run.output;
}

// On one rank the mesh is checked too (parallel.tensor = 3 used to train plain and exit 0), and
// so is the split of the global batch, which a dry run used to pass.
TEST(Cli, AMeshThatDoesNotFactorOneRankIsRefused) {
  const std::string tiny = std::string(ALBION_SOURCE_DIR) + "/recipes/tiny.ini";
  Outcome run = run_albion("train " + tiny + " --dry-run --parallel.tensor=3 --parallel.sequence=false");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("does not divide the 1 ranks"), std::string::npos) << run.output;
  run = run_albion("train " + tiny + " --dry-run --train.global_batch_tokens=3000");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("'train.global_batch_tokens' = 3000 is not a multiple"), std::string::npos) << run.output;
}

// submit refuses, before the job is queued, what its ranks would refuse when it starts: tiny's
// 4096 tokens per step do not split into 16 x 128-token micro-batches over 2 x 3 ranks.
TEST(Cli, SubmitChecksTheRecipeAgainstTheJobsRanks) {
  const std::string tiny = std::string(ALBION_SOURCE_DIR) + "/recipes/tiny.ini --run.dir=/nonexistent/run";
  Outcome run = run_albion("submit --dry-run --nodes 2 --ranks-per-node 3 -- train " + tiny);
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_EQ(count_lines(run.output), 1) << run.output;
  EXPECT_NE(run.output.find("train.micro_batch x train.seq_len x data-parallel ranks = 16 x 128 x 6"),
            std::string::npos) << run.output;
  run = run_albion("submit --dry-run --nodes 3 --gpus-per-node 4 -- train " + tiny + " --parallel.tensor=8");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("does not divide the 12 ranks"), std::string::npos) << run.output;
  EXPECT_EQ(run_albion("submit --dry-run --nodes 2 --ranks-per-node 1 -- train " + tiny).exit_code, 0);
}

TEST(Cli, DoctorPassesAndReportsEveryPiece) {
  Outcome run = run_albion("doctor");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  for (const char* piece : {"torch", "CUDA driver", "CUDA runtime", "NCCL", "cuDNN", "MPI", "HDF5",
                            "OpenSSL", "core dumps      disabled (RLIMIT_CORE 1", "status: ok"}) {
    EXPECT_NE(run.output.find(piece), std::string::npos) << piece << "\n" << run.output;
  }
  EXPECT_EQ(run.output.find("MISSING"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("copies loaded"), std::string::npos) << run.output;
}

TEST(Cli, VersionNamesTorchAndArchitectures) {
  Outcome run = run_albion("version");
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.output.rfind("albion ", 0), 0u);
  const std::string architectures =
      std::string("for architectures ") + albion::launch::kCudaArchitectures + "\n";
  EXPECT_NE(run.output.find(architectures), std::string::npos) << run.output;
  EXPECT_EQ(run_albion("--version").output, run.output);
}

TEST(Cli, BadEnvironmentIsUsageError) {
  Outcome run = run_albion("version", "ALBION_LOG_LEVEL=loud");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(run.output, "albion: error: ALBION_LOG_LEVEL='loud' is not one of debug, info, warning, error\n");
}

// Torch's CPU matrix products (oneMKL) run in reproducible mode unless the user chose otherwise
// (launch/reproducible_cpu_math.h); MKL_VERBOSE prints the mode of every call.
TEST(Cli, CpuMathIsReproducibleUnlessTheUserChoseOtherwise) {
  albion::testing_support::TempDir dir;
  ASSERT_EQ(run_albion("data prepare --tokenizer byte --output " + (dir / "data") + " --input " + ALBION_SOURCE_DIR +
                       "/recipes/corpus/austen/persuasion.txt")
                .exit_code,
            0);
  const auto train = [&](const std::string& run) {
    return std::string("train ") + ALBION_SOURCE_DIR + "/recipes/tiny.ini --run.device=cpu --run.dir=" + (dir / run) +
           " --data.dataset=" + (dir / "data") + " --train.steps=1 --train.seq_len=32 --train.micro_batch=1" +
           " --train.global_batch_tokens=32 --optim.warmup_steps=0 --eval.interval=0 --eval.sample_tokens=0" +
           " --log.tensorboard=false";
  };
  const Outcome defaults = run_albion(train("defaults"), "env -u MKL_CBWR -u MKL_DYNAMIC MKL_VERBOSE=1");
  ASSERT_EQ(defaults.exit_code, 0) << defaults.output;
  EXPECT_NE(defaults.output.find("CNR:AUTO Dyn:0"), std::string::npos) << defaults.output.substr(0, 2000);
  EXPECT_EQ(defaults.output.find("CNR:OFF"), std::string::npos);
  const Outcome chosen = run_albion(train("chosen"), "MKL_CBWR=COMPATIBLE MKL_DYNAMIC=TRUE MKL_VERBOSE=1");
  ASSERT_EQ(chosen.exit_code, 0) << chosen.output;
  EXPECT_NE(chosen.output.find("CNR:COMPATIBLE Dyn:1"), std::string::npos) << chosen.output.substr(0, 2000);
}

}  // namespace
