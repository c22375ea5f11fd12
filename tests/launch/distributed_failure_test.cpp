// File: tests/launch/distributed_failure_test.cpp
// Whole jobs under real mpirun, started through `albion launch`: the README's two-rank run, a rank
// killed with SIGKILL mid-training (also while saving checkpoints, then resumed), a rank frozen
// with SIGSTOP (only the watchdog can notice: the process is alive and mpirun sees nothing),
// recipes that differ between ranks, checkpoints scored and sampled on many ranks (one saved by a
// tensor-parallel run, its column cuts transposed), a published model fine-tuned tensor-parallel
// with its vocabulary padded (its export drawing the checkpoint's text), a one-process checkpoint
// whose vocabulary 2 ranks cannot cut evenly scored, sampled and resumed on 2, and loads that fail
// on some ranks only.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "checkpoint/export/safetensors.h"
#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/keys/key_provider.h"
#include "runtime/base/check.h"
#include "tests/support/checkpoint_steps.h"
#include "tests/support/eventually.h"
#include "tests/support/run_albion.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace albion {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing_support::TempDir;
using testing_support::eventually;
using testing_support::newest_committed_step;

const std::string kEnvironment =
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none";

std::string tiny(const TempDir& dir, const std::string& extra) {
  return std::string("train ") + ALBION_SOURCE_DIR + "/recipes/tiny.ini --run.dir=" + (dir / "run") +
         " --data.dataset=" + (dir / "data") + " --data.inputs=" + ALBION_SOURCE_DIR +
         "/recipes/corpus/austen/persuasion.txt --eval.sample_tokens=0 --log.tensorboard=false --log.interval=1 "
         "--optim.warmup_steps=1 " + extra;
}

// tiny()'s run, ending with a text sample of `tokens` tokens (printed after "sample:").
std::string tiny_with_sample(const TempDir& dir, const std::string& extra, int tokens) {
  std::string command = tiny(dir, extra);
  const std::string none = "--eval.sample_tokens=0";
  return command.replace(command.find(none), none.size(), "--eval.sample_tokens=" + std::to_string(tokens));
}

// The text a run printed after "sample:" ("" if none).
std::string printed_sample(const std::string& output) {
  const std::size_t at = output.rfind("sample:\n");
  return at == std::string::npos ? "" : output.substr(at + 8);
}

// The ranks of the job mpirun `launcher` started: its albion children.
std::vector<pid_t> ranks_of(pid_t launcher) {
  std::vector<pid_t> ranks;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    pid_t pid = 0;
    std::string name;
    char state = 0;
    pid_t parent = 0;
    if (stat >> pid >> name >> state >> parent && parent == launcher && name == "(albion)") ranks.push_back(pid);
  }
  return ranks;
}

// A job started in the background. Whatever happens in the test, it does not outlive it: its
// ranks are killed first (mpirun killed with SIGKILL would orphan them), then mpirun.
struct Job {
  pid_t pid = -1;
  std::string log;
  bool reaped = false;

  ~Job() {
    if (pid <= 0 || reaped) return;
    for (pid_t rank : ranks_of(pid)) kill(rank, SIGKILL);
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

std::unique_ptr<Job> start(const std::string& arguments, const std::string& log) {
  auto job = std::make_unique<Job>();
  job->log = log;
  const std::string command = kEnvironment + " exec " + ALBION_EXECUTABLE + " launch -n 4 -- " + arguments +
                              " > " + log + " 2>&1";
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  posix_spawn(&job->pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ);
  return job;
}

// Waits for the job; returns its exit code (128 + signal when killed) or -1 after `limit`.
int wait_for(Job& job, std::chrono::seconds limit) {
  int code = -1;  // on a timeout ~Job cleans up
  eventually([&] {
    int status = 0;
    if (waitpid(job.pid, &status, WNOHANG) != job.pid) return false;
    job.reaped = true;
    code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return true;
  }, limit, 100ms);
  return code;
}

// Waits until training is under way: four ranks exist and a step has been logged.
std::vector<pid_t> wait_until_training(const Job& job) {
  std::vector<pid_t> ranks;
  const bool training = eventually([&] {
    ranks = ranks_of(job.pid);
    return ranks.size() == 4 && testing_support::read_bytes(job.log).find("step 2/") != std::string::npos;
  }, 60s, 100ms);
  return training ? ranks : std::vector<pid_t>{};
}

bool all_gone(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) {
    if (kill(pid, 0) == 0) return false;
  }
  return true;
}

class DistributedJob : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    // Prepare the dataset once, in one process, so each job starts training at once.
    auto outcome = testing_support::run_albion(tiny(*dir_, "--dry-run"));
    ASSERT_EQ(outcome.exit_code, 0) << outcome.output;
    outcome = testing_support::run_albion(tiny(*dir_, "--train.steps=1 --eval.interval=0"));
    ASSERT_EQ(outcome.exit_code, 0) << outcome.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  // A residency policy, written as `file`, that puts the test's directory in the UK.
  static std::string uk_policy(const std::string& file) {
    return dir_->write(file, R"({"format": "albion-residency-policy/1",
      "roots": [{"path": ".", "jurisdiction": "UK"}]})");
  }
  static inline TempDir* dir_ = nullptr;
};

TEST_F(DistributedJob, TwoRanksTrainThroughLaunch) {
  const auto outcome = testing_support::run_albion(
      "launch -n 2 -- " + tiny(*dir_, "--train.steps=4 --eval.interval=4 --eval.batches=2"),
      kEnvironment);
  EXPECT_EQ(outcome.exit_code, 0) << outcome.output;
  EXPECT_NE(outcome.output.find("albion launch: mpirun -np 2"), std::string::npos) << outcome.output;
  EXPECT_NE(outcome.output.find("training on 2 ranks (1 node(s)) over mpi: 2 data-parallel (DDP)"), std::string::npos)
      << outcome.output;
  EXPECT_NE(outcome.output.find("final val_loss"), std::string::npos) << outcome.output;
}

// The Llama-layout tiny model cut over both ranks: one model, one data-parallel rank.
TEST_F(DistributedJob, TwoRanksTrainOneTensorParallelModelThroughLaunch) {
  const auto outcome = testing_support::run_albion(
      "launch -n 2 -- " + tiny(*dir_, "--train.steps=4 --eval.interval=4 --eval.batches=2 --model.preset=tiny-llama "
                                      "--parallel.tensor=2"),
      kEnvironment);
  EXPECT_EQ(outcome.exit_code, 0) << outcome.output;
  EXPECT_NE(outcome.output.find("over mpi: 1 data-parallel (DDP) x 2 tensor-parallel"), std::string::npos)
      << outcome.output;
  EXPECT_NE(outcome.output.find("MLP features and vocabulary cut 2 ways; this rank holds part 0"), std::string::npos)
      << outcome.output;
  // Two ranks on this machine share its cores instead of each running a thread on every core.
  EXPECT_NE(outcome.output.find("CPU threads per rank: "), std::string::npos) << outcome.output;
  EXPECT_NE(outcome.output.find("final val_loss"), std::string::npos) << outcome.output;
}

TEST_F(DistributedJob, SigkillOfOneRankEndsEveryRankWithin60Seconds) {
  const auto job = start(tiny(*dir_, "--train.micro_batch=4 --train.steps=100000 --eval.interval=0"),
                         *dir_ / "sigkill.log");
  const std::vector<pid_t> ranks = wait_until_training(*job);
  ASSERT_EQ(ranks.size(), 4u) << testing_support::read_bytes(job->log);
  const auto killed_at = std::chrono::steady_clock::now();
  kill(ranks[2], SIGKILL);
  const int code = wait_for(*job, 60s);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_NE(code, -1) << "the job still ran 60 s after a rank was killed";
  EXPECT_NE(code, 0);
  eventually([&] { return all_gone(ranks); }, 5s, 100ms);
  EXPECT_TRUE(all_gone(ranks)) << "a rank survived";
  std::cout << "job ended " << seconds << " s after SIGKILL, exit code " << code << "\n";
}

// A rank killed while the job saves encrypted checkpoints (every 2 steps, in the background): the
// job ends, and a new job on another number of ranks resumes from the newest committed checkpoint,
// which authenticates.
TEST_F(DistributedJob, JobKilledWhileCheckpointingResumesFromTheNewestCommitted) {
  const std::string policy = uk_policy("policy.json");
  ASSERT_EQ(testing_support::run_albion("keys generate --out " + (*dir_ / "kek")).exit_code, 0);
  const std::string checkpoints = "--checkpoint.interval=2 --checkpoint.dir=" + (*dir_ / "ckpt") +
                                  " --checkpoint.key=file:" + (*dir_ / "kek") + " --checkpoint.policy=" + policy;
  const auto job = start(tiny(*dir_, "--train.micro_batch=4 --train.steps=100000 --eval.interval=0 " + checkpoints),
                         *dir_ / "ckpt-kill.log");
  const std::vector<pid_t> ranks = wait_until_training(*job);
  ASSERT_EQ(ranks.size(), 4u) << testing_support::read_bytes(job->log);
  eventually([&] { return newest_committed_step(*dir_ / "ckpt") >= 6; }, 30s, 50ms);
  ASSERT_GE(newest_committed_step(*dir_ / "ckpt"), 6) << testing_support::read_bytes(job->log);
  kill(ranks[3], SIGKILL);
  EXPECT_NE(wait_for(*job, 60s), 0);
  for (pid_t pid : ranks) kill(pid, SIGKILL);
  const long newest = newest_committed_step(*dir_ / "ckpt");
  const auto verified = testing_support::run_albion(
      str_cat("ckpt verify ", *dir_ / "ckpt", "/step-", std::string(8 - std::to_string(newest).size(), '0'), newest,
              " --key file:", *dir_ / "kek"));
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  const auto resumed = testing_support::run_albion(
      "launch -n 2 -- " + tiny(*dir_, str_cat("--train.steps=", newest + 2, " --eval.interval=0 ", checkpoints)),
      kEnvironment);
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find(str_cat("at step ", newest, " (loaded")), std::string::npos) << resumed.output;
}

TEST_F(DistributedJob, WatchdogAbortsAJobWithAFrozenRank) {
  // SIGSTOP: the rank is alive, so mpirun notices nothing; its peers wait in their next
  // all-reduce until the watchdog's 3 s timeout aborts the job.
  const auto job = start(tiny(*dir_, "--train.micro_batch=4 --train.steps=100000 --eval.interval=0 "
                                     "--parallel.timeout_s=3"),
                         *dir_ / "sigstop.log");
  const std::vector<pid_t> ranks = wait_until_training(*job);
  ASSERT_EQ(ranks.size(), 4u) << testing_support::read_bytes(job->log);
  kill(ranks[1], SIGSTOP);
  const int code = wait_for(*job, 60s);
  EXPECT_NE(code, -1) << "the job hung with a frozen rank";
  EXPECT_NE(code, 0);
  const std::string log = testing_support::read_bytes(job->log);
  EXPECT_NE(log.find("did not complete within 3 s (parallel.timeout_s)"), std::string::npos) << log;
  EXPECT_NE(log.find("all_reduce(avg)"), std::string::npos) << log;
  for (pid_t pid : ranks) kill(pid, SIGKILL);  // in case the stopped one outlived mpirun
}

TEST_F(DistributedJob, RecipesThatDifferBetweenRanksAreRefused) {
  // Rank-dependent override through the environment OpenMPI gives each rank.
  // `launch` runs albion subcommands only, so start mpirun directly for this one.
  const std::string command = "mpirun -np 2 --oversubscribe /bin/sh -c '" + std::string(ALBION_EXECUTABLE) + " " +
                              tiny(*dir_, "--train.steps=3") + " --optim.lr=0.01${OMPI_COMM_WORLD_RANK}'";
  const auto outcome = testing_support::run_albion("version >/dev/null; " + command, "export " + kEnvironment + ";");
  EXPECT_EQ(outcome.exit_code, 2) << outcome.output;
  EXPECT_NE(outcome.output.find("the resolved recipe differs between ranks"), std::string::npos) << outcome.output;
}

TEST_F(DistributedJob, AMeshThatDoesNotFactorTheWorldOrTheModelIsRefused) {
  const auto outcome = testing_support::run_albion(
      "launch -n 2 -- " + tiny(*dir_, "--train.steps=3 --parallel.tensor=4"), kEnvironment);
  EXPECT_EQ(outcome.exit_code, 2) << outcome.output;
  EXPECT_NE(outcome.output.find("'parallel.tensor' = 4"), std::string::npos) << outcome.output;

  // The byte tokenizer's 257 ids cannot be cut 2 ways: a model.vocab_size that says 257 is refused
  // once, by launch, which reads the prepared dataset's vocabulary, before any rank starts. Left to
  // the tokenizer, the vocabulary is padded to 258 by itself, and model.vocab_size = 320 pads it
  // further. Pipeline parallelism is not there yet.
  const auto gpt2 = testing_support::run_albion(
      "launch -n 2 -- " + tiny(*dir_, "--train.steps=3 --parallel.tensor=2 --model.vocab_size=257"), kEnvironment);
  EXPECT_EQ(gpt2.exit_code, 2) << gpt2.output;
  const std::string refusal = "'parallel.tensor' = 2 does not divide the model's 257 vocabulary entries (recipe "
                              "key 'model.vocab_size' pads it)";
  const std::size_t first = gpt2.output.find(refusal);
  EXPECT_NE(first, std::string::npos) << gpt2.output;
  EXPECT_EQ(gpt2.output.find(refusal, first + 1), std::string::npos) << gpt2.output;
  EXPECT_EQ(gpt2.output.find("MPI_ABORT"), std::string::npos) << gpt2.output;
  for (const auto& [setting, rows] : {std::pair{"", "vocab 258,"}, {" --model.vocab_size=320", "vocab 320,"}}) {
    const auto padded = testing_support::run_albion(
        "launch -n 2 -- " + tiny(*dir_, std::string("--train.steps=3 --parallel.tensor=2") + setting), kEnvironment);
    EXPECT_EQ(padded.exit_code, 0) << padded.output;
    EXPECT_NE(padded.output.find("cut 2 ways"), std::string::npos) << padded.output;
    EXPECT_NE(padded.output.find(rows), std::string::npos) << padded.output;
  }
  const auto pipeline = testing_support::run_albion(
      "launch -n 2 -- " + tiny(*dir_, "--train.steps=3 --parallel.pipeline=2"), kEnvironment);
  EXPECT_EQ(pipeline.exit_code, 1) << pipeline.output;
  EXPECT_NE(pipeline.output.find("pipeline parallelism is not implemented yet"), std::string::npos) << pipeline.output;
}

// The JSON object `albion eval --json` printed (the one line starting with '{'), or null.
nlohmann::json eval_result(const std::string& output) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("{")) return nlohmann::json::parse(line);
  }
  return nullptr;
}

// The loss `albion eval MODEL_AND_OPTIONS` reports over 8 batches of 4 windows, in one process
// (`prefix` "") or cut over the 2 ranks of `prefix` "launch -n 2 -- "; -1 where it reports none.
double eval_loss(const std::string& prefix, const std::string& model_and_options) {
  const auto outcome = testing_support::run_albion(prefix + "eval " + model_and_options +
                                                       " --micro-batch 4 --batches 8 --json" +
                                                       (prefix.empty() ? "" : " --tensor 2"),
                                                   kEnvironment);
  EXPECT_EQ(outcome.exit_code, 0) << outcome.output;
  const nlohmann::json result = eval_result(outcome.output);
  return result.is_null() ? -1.0 : result["loss"].get<double>();
}

// `albion eval` and `albion generate` on a job's ranks: the model cut over --tensor ranks (GPT-2's
// c_attn in three groups, its embeddings and c_proj by rows: each rank reads only its part of the
// weights) and the replicas sharing the batches, the last one the windows left over after the last
// full batch. The loss is one process's, as are the accuracy on multiple-choice questions and the
// text drawn; rank 0 alone prints, and the job's load is one audit record.
TEST_F(DistributedJob, EvalAndGenerateOnManyRanksMatchOneProcess) {
  const std::string policy = uk_policy("inference-policy.json");
  ASSERT_EQ(testing_support::run_albion("keys generate --out " + (*dir_ / "inference-kek")).exit_code, 0);
  const std::string key_spec = "file:" + (*dir_ / "inference-kek");
  const std::string key = " --key " + key_spec;
  const std::string checkpoints = *dir_ / "inference-ckpt";
  const auto trained = testing_support::run_albion(
      tiny(*dir_, "--train.steps=4 --eval.interval=0 --model.vocab_size=320 --checkpoint.interval=4 "
                  "--checkpoint.dir=" + checkpoints + " --checkpoint.key=" + key_spec +
                  " --checkpoint.policy=" + policy));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string audit = *dir_ / "inference-audit.jsonl";
  const std::string eval = "eval " + checkpoints + key + " --audit " + audit + " --dataset " + (*dir_ / "data") +
                           " --micro-batch 4 --json";
  const auto alone = testing_support::run_albion(eval);
  ASSERT_EQ(alone.exit_code, 0) << alone.output;
  const nlohmann::json whole = eval_result(alone.output);
  ASSERT_FALSE(whole.is_null()) << alone.output;
  ASSERT_EQ(whole["windows"].get<std::int64_t>() % 4, 2) << "the test wants windows left after the last full batch";

  for (const auto& [ranks, tensor] : {std::pair{4, 2}, std::pair{3, 1}, std::pair{4, 4}}) {
    const std::string layout = str_cat(ranks, " ranks, tensor ", tensor);
    const auto job = testing_support::run_albion(str_cat("launch -n ", ranks, " -- ", eval, " --tensor ", tensor),
                                                 kEnvironment);
    ASSERT_EQ(job.exit_code, 0) << layout << ": " << job.output;
    const nlohmann::json result = eval_result(job.output);
    ASSERT_FALSE(result.is_null()) << layout << ": " << job.output;
    EXPECT_EQ(result["windows"], whole["windows"]) << layout;
    EXPECT_EQ(result["scored_tokens"], whole["scored_tokens"]) << layout;
    const double loss = whole["loss"].get<double>();
    EXPECT_NEAR(result["loss"].get<double>(), loss, 1e-6 * loss) << layout;
    EXPECT_EQ(std::count(job.output.begin(), job.output.end(), '{'), 1) << layout << ": " << job.output;
    const std::size_t decrypt = job.output.find("decrypt ");
    EXPECT_NE(decrypt, std::string::npos) << layout << ": " << job.output;
    EXPECT_EQ(job.output.find("decrypt ", decrypt + 1), std::string::npos) << layout << ": " << job.output;
  }
  // Multiple-choice questions, shared by the replicas in runs (7 over 3 replicas: 2, 2 and 3): one
  // process's accuracy.
  const std::string questions = *dir_ / "questions.jsonl";
  {
    std::ofstream out(questions);
    const char* const endings[] = {"was a man", "of Kellynch", "in Somersetshire", "for his own amusement"};
    for (int i = 0; i < 7; ++i) {
      out << R"({"context": "Sir Walter Elliot, of Kellynch Hall, )" << i << R"(", "choices": [")" << endings[i % 4]
          << R"(", ")" << endings[(i + 1) % 4] << R"(", ")" << endings[(i + 2) % 4] << R"("], "answer": )" << i % 3
          << "}\n";
    }
  }
  const std::string answer = "eval " + checkpoints + key + " --audit " + audit + " --choices " + questions + " --json";
  const auto answered_alone = testing_support::run_albion(answer);
  ASSERT_EQ(answered_alone.exit_code, 0) << answered_alone.output;
  const nlohmann::json answers = eval_result(answered_alone.output);
  ASSERT_FALSE(answers.is_null()) << answered_alone.output;
  EXPECT_EQ(answers["questions"], 7);
  for (const auto& [ranks, tensor] : {std::pair{4, 2}, std::pair{3, 1}}) {
    const std::string layout = str_cat(ranks, " ranks, tensor ", tensor, ", --choices");
    const auto job = testing_support::run_albion(str_cat("launch -n ", ranks, " -- ", answer, " --tensor ", tensor),
                                                 kEnvironment);
    ASSERT_EQ(job.exit_code, 0) << layout << ": " << job.output;
    const nlohmann::json result = eval_result(job.output);
    EXPECT_EQ(result, answers) << layout << ": " << job.output;
  }

  // Each rank would refuse a --tensor that does not divide the ranks: launch refuses it once.
  const auto uneven = testing_support::run_albion("launch -n 4 -- " + eval + " --tensor 3", kEnvironment);
  EXPECT_EQ(uneven.exit_code, 2) << uneven.output;
  EXPECT_EQ(testing_support::count_lines(uneven.output), 1) << uneven.output;
  EXPECT_NE(uneven.output.find("eval: --tensor 3 does not divide the job's 4 rank(s)"), std::string::npos)
      << uneven.output;
  // So is a checkpoint that is not there, or a dataset.
  for (const std::string& missing : {"eval /no/such/checkpoints --dataset " + (*dir_ / "data"),
                                     "eval " + checkpoints + " --dataset /no/such/dataset",
                                     std::string("generate /no/such/checkpoints")}) {
    const auto refused = testing_support::run_albion("launch -n 2 -- " + missing, kEnvironment);
    EXPECT_EQ(refused.exit_code, 2) << missing << ": " << refused.output;
    EXPECT_EQ(testing_support::count_lines(refused.output), 1) << missing << ": " << refused.output;
  }

  // stdout only: the text, drawn with the recipe's top-k sampling on every rank alike.
  const std::string generate = "generate " + checkpoints + key + " --audit " + audit + " --tokens 40 2>" +
                               (*dir_ / "generate.err") + " | cat";
  const std::string text = testing_support::run_albion(generate).output;
  ASSERT_GT(text.size(), 20u) << testing_support::read_bytes(*dir_ / "generate.err");
  for (int ranks : {2, 4}) {
    EXPECT_EQ(testing_support::run_albion(str_cat("launch -n ", ranks, " -- ", generate), kEnvironment).output, text)
        << ranks << " ranks: " << testing_support::read_bytes(*dir_ / "generate.err");
  }
  const auto heads = testing_support::run_albion("launch -n 3 -- " + generate, kEnvironment);
  EXPECT_NE(testing_support::read_bytes(*dir_ / "generate.err")
                .find("generate: the job's rank count = 3 does not divide the model's 4 attention heads"),
            std::string::npos)
      << testing_support::read_bytes(*dir_ / "generate.err");

  // One record per load: one process's and each job's, and the refused one failed.
  const std::string records = testing_support::read_bytes(audit);
  EXPECT_EQ(std::count(records.begin(), records.end(), '\n'), 1 + 3 + 3 + 1 + 2 + 1) << records;
  EXPECT_NE(records.find(R"("outcome":"ok","detail":"eval on 4 ranks")"), std::string::npos) << records;
  EXPECT_NE(records.find(R"("outcome":"ok","detail":"generate on 2 ranks")"), std::string::npos) << records;
  EXPECT_NE(records.find(R"("outcome":"failed","detail":"generate: the job's rank count = 3)"), std::string::npos)
      << records;
  EXPECT_EQ(testing_support::run_albion("ckpt audit " + audit).exit_code, 0);
}

// A tensor-parallel run's checkpoint stores GPT-2's column-cut weights (c_attn, c_fc) transposed,
// each rank's part written by that rank; one process and any tensor-parallel layout read it as the
// model the run trained (`generate` draws the run's own last sample).
TEST_F(DistributedJob, ATensorParallelRunsCheckpointScoresAlikeOnAnyLayout) {
  const std::string policy = uk_policy("tp-policy.json");
  ASSERT_EQ(testing_support::run_albion("keys generate --out " + (*dir_ / "tp-kek")).exit_code, 0);
  const std::string key_spec = "file:" + (*dir_ / "tp-kek");
  const std::string checkpoints = *dir_ / "tp-ckpt";
  const auto trained = testing_support::run_albion(
      "launch -n 2 -- " + tiny_with_sample(*dir_,
                                           "--train.steps=2 --eval.interval=0 --model.vocab_size=320 "
                                           "--parallel.tensor=2 --checkpoint.interval=2 --checkpoint.dir=" +
                                               checkpoints + " --checkpoint.key=" + key_spec +
                                               " --checkpoint.policy=" + policy,
                                           40),
      kEnvironment);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string sample = printed_sample(trained.output);
  ASSERT_GT(sample.size(), 20u) << trained.output;
  const auto inspect =
      testing_support::run_albion("ckpt inspect " + checkpoints + "/step-00000002 --key " + key_spec);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  std::istringstream lines(inspect.output);
  int transposed = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.find(".transformer.h.0.") == std::string::npos) continue;
    const bool column_cut = line.find("c_attn.weight") != std::string::npos ||
                            line.find("c_fc.weight") != std::string::npos;
    EXPECT_EQ(line.find("stored transposed") != std::string::npos, column_cut) << line;
    transposed += column_cut;
  }
  EXPECT_EQ(transposed, 6) << inspect.output;  // c_attn and c_fc, their weights and both moments

  const std::string eval = "eval " + checkpoints + " --key " + key_spec + " --dataset " + (*dir_ / "data") +
                           " --micro-batch 4 --json";
  const auto alone = testing_support::run_albion(eval);
  ASSERT_EQ(alone.exit_code, 0) << alone.output;
  const nlohmann::json whole = eval_result(alone.output);
  ASSERT_FALSE(whole.is_null()) << alone.output;
  for (int tensor : {2, 4}) {
    const auto job = testing_support::run_albion(str_cat("launch -n 4 -- ", eval, " --tensor ", tensor), kEnvironment);
    ASSERT_EQ(job.exit_code, 0) << "tensor " << tensor << ": " << job.output;
    const nlohmann::json result = eval_result(job.output);
    ASSERT_FALSE(result.is_null()) << job.output;
    const double loss = whole["loss"].get<double>();
    EXPECT_NEAR(result["loss"].get<double>(), loss, 1e-6 * loss) << "tensor " << tensor;
  }
  const std::string generate = "generate " + checkpoints + " --key " + key_spec + " 2>/dev/null | cat";
  const std::string text = testing_support::run_albion(generate).output;
  EXPECT_NE(text.find(sample), std::string::npos) << "the run's sample:\n" << sample << "generate:\n" << text;
  EXPECT_EQ(testing_support::run_albion("launch -n 2 -- " + generate, kEnvironment).output, text);
}

// LoRA adapters trained tensor-parallel on an exported base, on every kind of GPT-2 layer: c_attn
// (B cut by rows in q, k, v groups), c_fc (B by rows), the c_proj layers (A by columns, stored
// transposed). Sampled and scored on one process and cut over two ranks, they are the model the run
// trained.
TEST_F(DistributedJob, ATensorParallelLoraCheckpointScoresAlikeOnAnyLayout) {
  const std::string policy = uk_policy("lora-policy.json");
  ASSERT_EQ(testing_support::run_albion("keys generate --out " + (*dir_ / "lora-kek")).exit_code, 0);
  const std::string key_spec = "file:" + (*dir_ / "lora-kek");
  const std::string saving = " --eval.interval=0 --model.vocab_size=320 --checkpoint.interval=2 --checkpoint.key=" +
                             key_spec + " --checkpoint.policy=" + policy + " --checkpoint.dir=";
  const auto base_run = testing_support::run_albion(tiny(*dir_, "--train.steps=2" + saving + (*dir_ / "lora-base")));
  ASSERT_EQ(base_run.exit_code, 0) << base_run.output;
  const std::string base = *dir_ / "lora-base-hf";
  const auto exported = testing_support::run_albion("ckpt export " + (*dir_ / "lora-base") + "/step-00000002 --out " +
                                                    base + " --key " + key_spec + " --policy " + policy);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  const std::string checkpoints = *dir_ / "lora-ckpt";
  const auto trained = testing_support::run_albion(
      "launch -n 2 -- " + tiny_with_sample(*dir_,
                                           "--train.steps=2 --parallel.tensor=2 --model.init=" + base +
                                               " --lora.rank=4 --lora.targets=c_attn,c_fc,c_proj" + saving +
                                               checkpoints,
                                           40),
      kEnvironment);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string sample = printed_sample(trained.output);
  ASSERT_GT(sample.size(), 20u) << trained.output;
  const auto inspect = testing_support::run_albion("ckpt inspect " + checkpoints + "/step-00000002 --key " + key_spec);
  const std::size_t adapter = inspect.output.find("model.transformer.h.0.attn.c_proj.lora_A.weight");
  ASSERT_NE(adapter, std::string::npos) << inspect.output;
  const std::string line = inspect.output.substr(adapter, inspect.output.find('\n', adapter) - adapter);
  EXPECT_NE(line.find("stored transposed"), std::string::npos) << line;

  const std::string eval = "eval " + checkpoints + " --key " + key_spec + " --dataset " + (*dir_ / "data") +
                           " --micro-batch 4 --batches 8 --json";
  const auto alone = testing_support::run_albion(eval);
  ASSERT_EQ(alone.exit_code, 0) << alone.output;
  const nlohmann::json whole = eval_result(alone.output);
  const auto cut = testing_support::run_albion("launch -n 2 -- " + eval + " --tensor 2", kEnvironment);
  ASSERT_EQ(cut.exit_code, 0) << cut.output;
  const double loss = whole["loss"].get<double>();
  EXPECT_NEAR(eval_result(cut.output)["loss"].get<double>(), loss, 1e-6 * loss) << cut.output;
  const std::string generate = "generate " + checkpoints + " --key " + key_spec + " 2>/dev/null | cat";
  const std::string text = testing_support::run_albion(generate).output;
  EXPECT_NE(text.find(sample), std::string::npos) << "the run's sample:\n" << sample << "generate:\n" << text;
  EXPECT_EQ(testing_support::run_albion("launch -n 2 -- " + generate, kEnvironment).output, text);
}

// The shape of `tensor` in the safetensors file `path`, from its header.
std::vector<std::int64_t> safetensors_shape(const std::string& path, const std::string& tensor) {
  const std::string bytes = testing_support::read_bytes(path);
  const auto* data = reinterpret_cast<const std::uint8_t*>(bytes.data());
  for (const checkpoint::SafetensorsIndex::Entry& entry :
       checkpoint::parse_safetensors_header({data, bytes.size()}, path).entries) {
    if (entry.name == tensor) return entry.shape;
  }
  return {};
}

// A published model whose vocabulary no degree divides (here the byte tokenizer's 257 ids, as
// GPT-2's 50,257), scored from its Hugging Face directory on one process and two ranks (a dataset
// of another tokenizer refused), then fine-tuned tensor-parallel: the trainer adds a masked
// padding row by itself, so the fine-tune is the one-process fine-tune of the unpadded model. Its
// checkpoint scores as that one's, alike on one process and two ranks, samples the run's own text,
// and exports the published shape again.
TEST_F(DistributedJob, APublishedVocabularyPaddedForTensorParallelFineTunesAsOneProcess) {
  const std::string policy = uk_policy("padding-policy.json");
  ASSERT_EQ(testing_support::run_albion("keys generate --out " + (*dir_ / "padding-kek")).exit_code, 0);
  const std::string key_spec = "file:" + (*dir_ / "padding-kek");
  const std::string key = " --key " + key_spec + " --policy " + policy;
  const std::string saving = " --eval.interval=0 --checkpoint.interval=2 --checkpoint.key=" + key_spec +
                             " --checkpoint.policy=" + policy + " --checkpoint.dir=";
  const auto base_run = testing_support::run_albion(tiny(*dir_, "--train.steps=2" + saving + (*dir_ / "padding-base")));
  ASSERT_EQ(base_run.exit_code, 0) << base_run.output;
  const std::string base = *dir_ / "padding-base-hf";
  const auto exported =
      testing_support::run_albion("ckpt export " + (*dir_ / "padding-base") + "/step-00000002 --out " + base + key);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  ASSERT_EQ(safetensors_shape(base + "/model.safetensors", "transformer.wte.weight").at(0), 257);

  const std::string fine_tune = "--train.steps=2 --model.init=" + base;
  const auto alone = testing_support::run_albion(tiny(*dir_, fine_tune + saving + (*dir_ / "padding-one")));
  ASSERT_EQ(alone.exit_code, 0) << alone.output;
  const std::string checkpoints = *dir_ / "padding-tp";
  const auto cut = testing_support::run_albion(
      "launch -n 2 -- " + tiny_with_sample(*dir_,
                                           fine_tune + " --parallel.tensor=2" + saving +
                                               checkpoints,
                                           40),
      kEnvironment);
  ASSERT_EQ(cut.exit_code, 0) << cut.output;
  EXPECT_NE(cut.output.find("vocab 258 (1 padding row masked)"), std::string::npos) << cut.output;
  const std::string sample = printed_sample(cut.output);
  ASSERT_GT(sample.size(), 20u) << cut.output;

  const auto eval = [&](const std::string& prefix, const std::string& directory) {
    return eval_loss(prefix, directory + " --key " + key_spec + " --dataset " + (*dir_ / "data") + " --seq-len 128");
  };
  // The published model scored as it is, before fine-tuning: as its own checkpoint, and cut over
  // two ranks with a padding row added for the cut.
  const double base_loss = eval("", *dir_ / "padding-base");
  EXPECT_EQ(eval("", base), base_loss);
  EXPECT_NEAR(eval("launch -n 2 -- ", base), base_loss, 1e-6 * base_loss);
  const std::string with_tokenizer = *dir_ / "padding-base-tokenizer";
  fs::create_directories(with_tokenizer);
  for (const char* file : {"config.json", "model.safetensors"}) {
    fs::copy(base + "/" + file, with_tokenizer + "/" + file);
  }
  fs::copy(std::string(ALBION_SOURCE_DIR) + "/tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json",
           with_tokenizer + "/tokenizer.json");
  const auto other_tokenizer = testing_support::run_albion("eval " + with_tokenizer + " --dataset " + (*dir_ / "data"));
  EXPECT_EQ(other_tokenizer.exit_code, 2) << other_tokenizer.output;
  EXPECT_NE(other_tokenizer.output.find("was prepared with tokenizer byte, not the model's (hf:"), std::string::npos)
      << other_tokenizer.output;

  const double expected = eval("", *dir_ / "padding-one");
  const double loss = eval("", checkpoints);
  EXPECT_NEAR(loss, expected, 1e-4 * expected);
  EXPECT_NEAR(eval("launch -n 2 -- ", checkpoints), loss, 1e-6 * loss);
  const std::string text =
      testing_support::run_albion("generate " + checkpoints + " --key " + key_spec + " 2>/dev/null | cat").output;
  EXPECT_NE(text.find(sample), std::string::npos) << "the run's sample:\n" << sample << "generate:\n" << text;

  const std::string published = *dir_ / "padding-tp-hf";
  const auto again =
      testing_support::run_albion("ckpt export " + checkpoints + "/step-00000002 --out " + published + key);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(safetensors_shape(published + "/model.safetensors", "transformer.wte.weight").at(0), 257);
  std::ifstream config(published + "/config.json");
  EXPECT_EQ(nlohmann::json::parse(config).at("vocab_size").get<std::int64_t>(), 257);

  // The export draws the checkpoint's text, in one process and cut over two ranks (a padding row
  // added for the cut). The byte-level tokenizer has no file, so it is named; on two ranks its
  // absence is one error.
  const std::string drawing = " --prompt 'It was' --tokens 30 --top-k 5 --temperature 0.9 --seed 11 2>/dev/null | cat";
  const std::string drawn =
      testing_support::run_albion("generate " + checkpoints + " --key " + key_spec + drawing).output;
  ASSERT_GT(drawn.size(), 20u);
  EXPECT_EQ(testing_support::run_albion("generate " + published + " --tokenizer byte" + drawing).output, drawn);
  EXPECT_EQ(testing_support::run_albion("launch -n 2 -- generate " + published + " --tokenizer byte" + drawing,
                                        kEnvironment)
                .output,
            drawn);
  const auto unnamed = testing_support::run_albion("launch -n 2 -- generate " + published, kEnvironment);
  EXPECT_EQ(unnamed.exit_code, 2) << unnamed.output;
  const std::string error = "albion: error: generate: " + published + " holds no tokenizer";
  const std::size_t first = unnamed.output.find(error);
  EXPECT_NE(first, std::string::npos) << unnamed.output;
  EXPECT_EQ(unnamed.output.find(error, first + 1), std::string::npos) << unnamed.output;
}

// A one-process run's checkpoint of the byte tokenizer's 257 ids, which 2 ranks cannot cut evenly:
// scored, sampled and resumed on 2 tensor-parallel ranks, its vocabulary padded with a masked row
// (Note [A checkpoint's vocabulary on another number of ranks]). The scores and the text are the
// one process's, and the resumed run's checkpoint (258 rows) scores alike on one process; a recipe
// pinning other rows is refused.
TEST_F(DistributedJob, AOneProcessCheckpointOfAnUnevenVocabularyIsScoredSampledAndResumedCut) {
  const std::string policy = uk_policy("uneven-policy.json");
  ASSERT_EQ(testing_support::run_albion("keys generate --out " + (*dir_ / "uneven-kek")).exit_code, 0);
  const std::string key_spec = "file:" + (*dir_ / "uneven-kek");
  const std::string checkpoints = *dir_ / "uneven-ckpt";
  const std::string saving = " --eval.interval=0 --checkpoint.interval=2 --checkpoint.key=" + key_spec +
                             " --checkpoint.policy=" + policy + " --checkpoint.dir=" + checkpoints;
  const auto trained = testing_support::run_albion(tiny(*dir_, "--train.steps=2" + saving));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const auto eval = [&](const std::string& prefix) {
    return eval_loss(prefix, checkpoints + " --key " + key_spec + " --dataset " + (*dir_ / "data"));
  };
  const double loss = eval("");
  EXPECT_NEAR(eval("launch -n 2 -- "), loss, 1e-6 * loss);
  const std::string generate = "generate " + checkpoints + " --key " + key_spec + " --tokens 40 2>/dev/null | cat";
  const std::string text = testing_support::run_albion(generate).output;
  ASSERT_GT(text.size(), 20u);
  EXPECT_EQ(testing_support::run_albion("launch -n 2 -- " + generate, kEnvironment).output, text);

  const auto resumed = testing_support::run_albion(
      "launch -n 2 -- " + tiny(*dir_, "--train.steps=4 --parallel.tensor=2" + saving), kEnvironment);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + checkpoints + "/step-00000002 at step 2"), std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("vocab 258 (1 padding row masked)"), std::string::npos) << resumed.output;
  ASSERT_EQ(newest_committed_step(checkpoints), 4);
  const double trained_on = eval("");
  EXPECT_LT(trained_on, loss);  // two more steps
  EXPECT_NEAR(eval("launch -n 2 -- "), trained_on, 1e-6 * trained_on);
  // A recipe that pins other rows cannot resume it.
  const auto pinned = testing_support::run_albion(tiny(*dir_, "--train.steps=6 --model.vocab_size=320" + saving));
  EXPECT_EQ(pinned.exit_code, 2) << pinned.output;
  EXPECT_NE(pinned.output.find("error: recipe key 'model.vocab_size' = 320, but the checkpoint to resume holds a "
                               "model with 258 vocabulary rows"),
            std::string::npos)
      << pinned.output;
}

// A load that fails on the ranks (here every rank: the wrong key) is one error line, the exit code
// of the error (3), no MPI_ABORT, and one failed record.
TEST_F(DistributedJob, AJobsFailedLoadIsOneErrorAndOneAuditRecord) {
  ASSERT_EQ(testing_support::run_albion("keys generate --out " + (*dir_ / "other-kek")).exit_code, 0);
  const std::string policy = uk_policy("wrong-key-policy.json");
  ASSERT_EQ(testing_support::run_albion("keys generate --out " + (*dir_ / "right-kek")).exit_code, 0);
  const std::string checkpoints = *dir_ / "wrong-key-ckpt";
  const auto trained = testing_support::run_albion(
      tiny(*dir_, "--train.steps=2 --eval.interval=0 --checkpoint.interval=2 --checkpoint.dir=" + checkpoints +
                      " --checkpoint.key=file:" + (*dir_ / "right-kek") + " --checkpoint.policy=" + policy));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string audit = *dir_ / "wrong-key-audit.jsonl";
  const auto job = testing_support::run_albion("launch -n 2 -- eval " + checkpoints + " --key file:" +
                                                   (*dir_ / "other-kek") + " --audit " + audit + " --dataset " +
                                                   (*dir_ / "data"),
                                               kEnvironment);
  EXPECT_EQ(job.exit_code, 3) << job.output;
  const std::string error = "albion: error: ";
  const std::size_t first = job.output.find(error);
  EXPECT_NE(first, std::string::npos) << job.output;
  EXPECT_EQ(job.output.find(error, first + 1), std::string::npos) << job.output;
  EXPECT_NE(job.output.find("wrong key"), std::string::npos) << job.output;
  EXPECT_EQ(job.output.find("MPI_ABORT"), std::string::npos) << job.output;
  const std::string records = testing_support::read_bytes(audit);
  EXPECT_EQ(std::count(records.begin(), records.end(), '\n'), 1) << records;
  EXPECT_NE(records.find(R"("outcome":"failed")"), std::string::npos) << records;
}

// A rank reads only its part of a checkpoint, and authenticates just that: damage in rank 1's own
// random-generator state is found by rank 1 alone. The job still ends as one: one error line naming
// the rank, exit code 3, no MPI_ABORT, and the run's audit log records the failed load (rank 0's
// own read was fine).
TEST_F(DistributedJob, AResumeThatFailsOnOneRankIsOneErrorAndAFailedAuditRecord) {
  const std::string policy = uk_policy("partial-policy.json");
  ASSERT_EQ(testing_support::run_albion("keys generate --out " + (*dir_ / "partial-kek")).exit_code, 0);
  const std::string checkpoints = *dir_ / "partial-ckpt";
  const std::string run = std::string(" --eval.interval=0 --checkpoint.interval=2") +
                          " --checkpoint.dir=" + checkpoints + " --checkpoint.key=file:" + (*dir_ / "partial-kek") +
                          " --checkpoint.policy=" + policy;
  const auto trained = testing_support::run_albion("launch -n 2 -- " + tiny(*dir_, "--train.steps=2" + run),
                                                   kEnvironment);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;

  const fs::path step = fs::path(checkpoints) / "step-00000002";
  std::uint64_t at = 0;  // a byte of rank 1's generator state in its shard
  {
    const auto key = checkpoint::open_key_provider("file:" + (*dir_ / "partial-kek"));
    const checkpoint::CheckpointReader reader(step, key.get());
    for (const checkpoint::ShardRecord& shard : reader.manifest().shards) {
      for (const checkpoint::SliceRecord& slice : shard.slices) {
        if (slice.name == "rng.cpu.rank1") at = shard.data_offset + slice.data_position + 7;
      }
    }
  }
  ASSERT_GT(at, 0u);
  {
    std::fstream shard(step / "shard-00001.h5", std::ios::in | std::ios::out | std::ios::binary);
    shard.seekg(static_cast<std::streamoff>(at));
    const char byte = static_cast<char>(shard.get());
    shard.seekp(static_cast<std::streamoff>(at));
    shard.put(static_cast<char>(byte ^ 0x01));
  }
  const auto resumed = testing_support::run_albion("launch -n 2 -- " + tiny(*dir_, "--train.steps=4" + run),
                                                   kEnvironment);
  EXPECT_EQ(resumed.exit_code, 3) << resumed.output;
  const std::string error = "albion: error: rank 1: ";
  const std::size_t first = resumed.output.find(error);
  EXPECT_NE(first, std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("albion: error: ", first + 1), std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("MPI_ABORT"), std::string::npos) << resumed.output;
  const std::string records = testing_support::read_bytes(*dir_ / "run/audit.jsonl");  // the run's
  const std::size_t last = records.rfind(R"("action":"load")");
  ASSERT_NE(last, std::string::npos) << records;
  EXPECT_NE(records.find(R"("outcome":"failed","detail":"rank 1: )", last), std::string::npos) << records;
}

}  // namespace
}  // namespace albion
