// File: tests/runtime/train/trainer_test.cpp
// The trainer on a small character-level dataset: gradient accumulation equals the big batch,
// runs repeat bit for bit, metrics, the resolved recipe and a profile window land in the run
// directory, a stop request and a diverging loss end training cleanly, and each class of bad
// recipe is refused, as is preparing a dataset in plaintext when the recipe gives it a key;
// model.init starts from a Hugging Face directory's weights; eval.choices answers multiple-choice
// questions at each evaluation.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <sstream>
#include <vector>
#include <torch/csrc/profiler/orchestration/observer.h>

#include "runtime/base/check.h"
#include "runtime/base/error.h"
#include "runtime/config/recipe.h"
#include "runtime/data/dataset_manifest.h"
#include "runtime/data/prepare.h"
#include "runtime/tokenizers/tokenizer.h"
#include "runtime/train/choice_score.h"
#include "runtime/train/trainer.h"
#include "tests/runtime/train/training_state_support.h"
#include "tests/support/chat_records.h"
#include "tests/support/hugging_face_directory.h"
#include "tests/support/small_dataset.h"
#include "tests/support/temp_dir.h"

namespace albion::train {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

class TrainerTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    testing_support::prepare_small_dataset(*dir_ / "data", 0.1);
  }
  static void TearDownTestSuite() { delete dir_; }

  // A small, fast recipe: `micro_batch` x `accumulation` sequences of 32 tokens per step.
  static config::Recipe recipe(std::int64_t micro_batch, std::int64_t accumulation, const std::string& run) {
    config::Recipe r;
    r.run.dir = *dir_ / run;
    r.run.device = "cpu";
    r.data.dataset = *dir_ / "data";
    r.model.preset = "tiny";
    r.train.seq_len = 32;
    r.train.micro_batch = micro_batch;
    r.train.global_batch_tokens = 32 * micro_batch * accumulation;
    r.train.steps = 6;
    r.optim.warmup_steps = 2;
    r.eval.interval = 3;
    r.eval.batches = 2;
    r.eval.sample_tokens = 16;
    r.log.interval = 1;
    return r;
  }

  // Eight steps of 4 sequences each, with no evaluation or sample: training alone, for the tests of
  // what a step logs and reads.
  static config::Recipe training_alone(const std::string& run) {
    config::Recipe r = recipe(4, 1, run);
    r.train.steps = 8;
    r.eval.interval = 0;
    r.eval.sample_interval = 0;
    return r;
  }

  // A recipe that prepares its dataset `run`-data from `records` (chat JSONL) with `chat_template`.
  static config::Recipe chat_recipe(const std::string& run, const std::string& records,
                                    const std::string& chat_template) {
    config::Recipe r = recipe(4, 1, run);
    r.data.dataset = *dir_ / (run + "-data");
    r.data.inputs = *dir_ / (run + ".jsonl");
    std::ofstream(r.data.inputs) << records;
    r.data.format = "chat";
    r.data.chat_template = chat_template;
    return r;
  }

  // 200 short prompt/completion records: "Q: i+1?" answered " i+1".
  static std::string counting_records() {
    std::ostringstream records;
    for (int i = 0; i < 200; ++i) {
      records << R"({"prompt": "Q: )" << i << R"(+1?\nA:", "completion": " )" << i + 1 << "\"}\n";
    }
    return records.str();
  }

  static TrainSummary run(const config::Recipe& r, TrainingHooks* hooks = nullptr) {
    std::atomic<bool> stop{false};
    Trainer trainer(r, {}, nullptr, hooks);
    return trainer.train(stop);
  }

  // Trains run `run` and writes its model to `directory` as a Hugging Face directory: a base for
  // model.init. The trainer is returned for its weights.
  static std::unique_ptr<Trainer> train_base(const std::string& run, const fs::path& directory) {
    auto source = std::make_unique<Trainer>(recipe(4, 1, run), WorldPosition{});
    std::atomic<bool> stop{false};
    source->train(stop);
    testing_support::write_hugging_face_directory(source->model(), directory);
    return source;
  }

  static TempDir* dir_;
};
TempDir* TrainerTest::dir_ = nullptr;

// Six steps each, the same to 1e-5 relative: the same global batches, split otherwise.
void expect_same_six_losses(const TrainSummary& accumulated, const TrainSummary& whole) {
  ASSERT_EQ(accumulated.losses.size(), 6u);
  ASSERT_EQ(whole.losses.size(), 6u);
  for (std::size_t i = 0; i < whole.losses.size(); ++i) {
    EXPECT_NEAR(accumulated.losses[i], whole.losses[i], 1e-5 * whole.losses[i]) << "step " << i;
  }
}

// Under tensor parallelism a vocabulary the recipe leaves alone is padded until the degree
// divides it; one the recipe sets is kept (and refused later if the degree does not divide it).
TEST(RecipeModelConfig, PadsALeftAloneVocabularyForTheTensorParallelDegree) {
  config::Recipe r;
  r.model.preset = "gpt2";
  EXPECT_EQ(recipe_model_config(r).vocab_size, 50'257);
  r.parallel.tensor = 2;
  EXPECT_EQ(recipe_model_config(r).vocab_size, 50'258);
  r.parallel.tensor = 8;
  EXPECT_EQ(recipe_model_config(r).vocab_size, 50'264);
  r.model.vocab_size = 50'257;
  EXPECT_EQ(recipe_model_config(r).vocab_size, 50'257);
  // A preset that takes the tokenizer's: padded to a multiple both of its own and of the degree.
  r = config::Recipe();
  r.model.preset = "tiny";
  r.parallel.tensor = 4;
  models::ModelConfig tiny = recipe_model_config(r);
  tiny.take_tokenizer_vocabulary(257);
  EXPECT_EQ(tiny.vocab_size, 260);
}

TEST_F(TrainerTest, GradientAccumulationFourByTwoEqualsEightByOne) {
  const TrainSummary whole = run(recipe(8, 1, "whole"));
  expect_same_six_losses(run(recipe(2, 4, "accumulated")), whole);
  EXPECT_LT(whole.losses.back(), whole.losses.front());  // it learns
}

// Chat data trains only the answers, so micro-batches hold different numbers of trained targets:
// the step's loss and gradient are still the mean over all of them, whatever the split (a mean of
// the micro-batches' means would weigh a short answer's tokens more).
TEST_F(TrainerTest, GradientAccumulationWeighsEveryTrainedTokenAlike) {
  auto chat = [&](std::int64_t micro_batch, std::int64_t accumulation, const std::string& run) {
    config::Recipe r = chat_recipe(run, testing_support::varied_answer_records(300), "none");
    r.data.dataset = *dir_ / "weighed-data";  // prepared by the first run
    r.data.packing = "documents";
    r.train.micro_batch = micro_batch;
    r.train.global_batch_tokens = 32 * micro_batch * accumulation;
    r.eval.interval = 0;
    return r;
  };
  const TrainSummary accumulated = run(chat(2, 4, "weighed-accumulated"));
  expect_same_six_losses(accumulated, run(chat(8, 1, "weighed-whole")));
}

TEST_F(TrainerTest, TwoRunsGiveBitIdenticalLosses) {
  const TrainSummary first = run(recipe(4, 2, "first"));
  const TrainSummary second = run(recipe(4, 2, "second"));
  EXPECT_EQ(first.losses, second.losses);
  EXPECT_EQ(first.final_val_loss, second.final_val_loss);
  EXPECT_EQ(first.final_sample, second.final_sample);
}

// Recomputing activations in the backward pass (every block, or every second) changes memory, not
// the run: losses, validation loss and sample are bit for bit the plain run's.
TEST_F(TrainerTest, ActivationCheckpointingChangesNothingButMemory) {
  const TrainSummary plain = run(recipe(4, 2, "plain"));
  for (std::int64_t every : {1, 2}) {
    config::Recipe r = recipe(4, 2, "recomputed-" + std::to_string(every));
    r.model.activation_checkpointing = every;
    const TrainSummary recomputed = run(r);
    EXPECT_EQ(plain.losses, recomputed.losses) << every;
    EXPECT_EQ(plain.final_val_loss, recomputed.final_val_loss) << every;
    EXPECT_EQ(plain.final_sample, recomputed.final_sample) << every;
  }
}

// With AdamW, and with Muon (optim.name = muon: one momentum per hidden matrix, two moments for
// the rest), which trains otherwise than AdamW and learns too.
TEST_F(TrainerTest, ResumedRunEqualsUninterruptedBitForBit) {
  std::vector<double> adamw_losses;
  for (const std::string optimizer : {"adamw", "muon"}) {
    config::Recipe r = recipe(2, 2, "uninterrupted-" + optimizer);
    r.optim.name = optimizer;
    r.train.steps = 8;
    r.eval.interval = 0;
    testing_support::CaptureAfter capture(3);  // after step 4 of 8
    const std::vector<double> uninterrupted = run(r, &capture).losses;
    ASSERT_EQ(capture.state.steps_done, 4);
    EXPECT_EQ(capture.state.optimizer_steps, 4);

    testing_support::SliceStore store;
    store.add(capture.state.slices);
    // A fresh trainer starts from its initial parameters; the restore must replace them all.
    r.run.dir = *dir_ / ("resumed-" + optimizer);
    testing_support::RestoreFrom restore(capture.state, store);
    const TrainSummary resumed = run(r, &restore);
    ASSERT_EQ(resumed.losses.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(resumed.losses[i], uninterrupted[4 + i]) << optimizer << ", step " << 4 + i;
    }
    if (optimizer == "adamw") {
      adamw_losses = uninterrupted;
    } else {
      EXPECT_NE(uninterrupted, adamw_losses);
      EXPECT_LT(uninterrupted.back(), uninterrupted.front() - 0.1);
    }
  }
}

TEST_F(TrainerTest, WritesMetricsRecipeAndTensorBoardEvents) {
  const config::Recipe r = recipe(4, 1, "observed");
  const TrainSummary summary = run(r);
  EXPECT_TRUE(summary.final_val_loss.has_value());
  EXPECT_FALSE(summary.final_sample.empty());
  std::ifstream metrics(r.run.dir + "/metrics.jsonl");
  std::string line;
  int steps = 0;
  int evals = 0;
  while (std::getline(metrics, line)) {
    nlohmann::json record = nlohmann::json::parse(line);
    if (record.contains("val_loss")) {
      ++evals;
      continue;
    }
    for (const char* key : {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "elapsed_s"}) {
      EXPECT_TRUE(record.contains(key)) << key << " missing from " << line;
    }
    EXPECT_TRUE(record["mfu"].is_null());  // CPU: no known peak rate
    ++steps;
  }
  EXPECT_EQ(steps, 6);
  EXPECT_EQ(evals, 2);
  EXPECT_TRUE(fs::exists(r.run.dir + "/recipe.ini"));
  bool events = false;
  for (const auto& entry : fs::directory_iterator(r.run.dir)) {
    events |= entry.path().filename().string().starts_with("events.out.tfevents.");
  }
  EXPECT_TRUE(events);
}

// The tokens/s of each logged step, from the run's metrics.jsonl.
std::vector<double> logged_rates(const config::Recipe& r) {
  std::ifstream metrics(r.run.dir + "/metrics.jsonl");
  std::vector<double> rates;
  for (std::string line; std::getline(metrics, line);) {
    rates.push_back(nlohmann::json::parse(line).at("tokens_per_s").get<double>());
  }
  return rates;
}

double median(std::vector<double> values) {
  std::ranges::sort(values);
  return values[values.size() / 2];
}

// Each step's tokens/s over its own work: on the CPU a step runs while it is queued and is read
// after the next one ran, and timed from its reads the last step once took next to no time (a rate
// hundreds of times the others', and the step before it half as fast). Eight steps of the same
// work: none more than 10x the median (two busy cores make a step 2-3x slower at most).
TEST_F(TrainerTest, EachStepsRateIsTimedOverItsOwnWork) {
  const config::Recipe r = training_alone("rates");
  run(r);
  const std::vector<double> rates = logged_rates(r);
  ASSERT_EQ(rates.size(), 8u);
  for (double rate : rates) EXPECT_LT(rate, 10 * median(rates)) << testing::PrintToString(rates);
}

// Note [Rates over training alone]: a hook that takes 2 s after one step (as a checkpoint's
// snapshot may; an evaluation or a sample would too) is in no step's rate: the logged intervals
// (each step's tokens over its rate) add up to less than the run's wall time less 1.5 s. A step
// takes ~15 ms alone, but beside other tests (busy-polling MPI ranks) the process can wait
// seconds for a core, which once made one interval 2.1 s with the pause left out: a bound on the
// sum holds however slow the steps are. With the pause counted, the step after it logged 62
// tokens/s (2.1 s) and the sum exceeded the bound.
TEST_F(TrainerTest, TimeAfterAStepStaysOutOfTheRates) {
  struct PausingAfterAStep : TrainingHooks {
    void after_step(Trainer&, std::int64_t step) override {
      if (step == 3) std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  } pausing;
  const config::Recipe r = training_alone("paused");
  const auto start = std::chrono::steady_clock::now();
  run(r, &pausing);
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::vector<double> rates = logged_rates(r);
  ASSERT_EQ(rates.size(), 8u);
  const auto tokens = static_cast<double>(r.train.global_batch_tokens);
  double logged_s = 0;
  for (double rate : rates) logged_s += tokens / rate;
  EXPECT_LT(logged_s, wall_s - 1.5) << testing::PrintToString(rates);
}

// Note [Steps read one late]: between the first and the last step, with no evaluation or sample,
// the loop reads no tensor's value on the host through an op (.item(), which on a GPU waits for
// all the work queued since, the next step's included): a step's numbers come by a HostCopy.
std::atomic<int> host_reads{0};
std::unique_ptr<at::ObserverContext> count_host_read(const at::RecordFunction& fn) {
  if (std::string_view(fn.name()) == "aten::_local_scalar_dense") ++host_reads;
  return nullptr;
}

TEST_F(TrainerTest, StepsBetweenTheFirstAndTheLastReadNoTensorOnTheHost) {
  struct CountingHostReads : TrainingHooks {
    void after_step(Trainer&, std::int64_t step) override {
      if (step == 1) handle = at::addThreadLocalCallback(at::RecordFunctionCallback(count_host_read));
      if (step == 5) at::removeCallback(handle);
    }
    at::CallbackHandle handle = 0;
  } counting;
  const config::Recipe r = training_alone("host-reads");
  host_reads = 0;
  run(r, &counting);
  EXPECT_EQ(host_reads.load(), 0) << "in steps 2 to 5";
  // The callback sees such a read: one step's loss read as the loop once read it.
  host_reads = 0;
  const at::CallbackHandle handle = at::addThreadLocalCallback(at::RecordFunctionCallback(count_host_read));
  EXPECT_EQ(at::ones({}).item<double>(), 1.0);
  at::removeCallback(handle);
  EXPECT_EQ(host_reads.load(), 1);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(TrainerTest, ProfilesTheWindowWithoutChangingTheRun) {
  config::Recipe r = recipe(4, 1, "profiled");
  r.profile.start_step = 2;
  r.profile.steps = 2;
  const TrainSummary profiled = run(r);
  const TrainSummary plain = run(recipe(4, 1, "unprofiled"));
  EXPECT_EQ(profiled.losses, plain.losses);

  const fs::path dir = fs::path(r.run.dir) / "profile";
  const nlohmann::json trace = nlohmann::json::parse(read_file(dir / "rank0.pt.trace.json"));
  std::set<std::string> markers;
  bool matrix_product = false;
  for (const nlohmann::json& event : trace.at("traceEvents")) {
    const std::string name = event.value("name", "");
    if (name.starts_with("ProfilerStep#")) markers.insert(name);
    matrix_product |= name == "aten::mm" || name == "aten::addmm";
  }
  EXPECT_EQ(markers, (std::set<std::string>{"ProfilerStep#2", "ProfilerStep#3"}));
  EXPECT_TRUE(matrix_product);
  const std::string summary = read_file(dir / "rank0.summary.txt");
  EXPECT_TRUE(summary.starts_with("steps 2-3: wall ")) << summary;
  EXPECT_NE(summary.find("aten::mm"), std::string::npos) << summary;
  for (const auto& entry : fs::directory_iterator(dir)) {
    EXPECT_FALSE(entry.path().string().ends_with(".partial")) << entry.path();
  }
}

TEST_F(TrainerTest, AProfileWindowPastTheRunIsCutOrEmpty) {
  config::Recipe r = recipe(4, 1, "profile-cut");
  r.profile.start_step = 5;
  r.profile.steps = 10;  // the run has 6 steps
  run(r);
  EXPECT_TRUE(read_file(fs::path(r.run.dir) / "profile/rank0.summary.txt").starts_with("steps 5-6: "));

  r = recipe(4, 1, "profile-past");
  r.profile.start_step = 7;
  r.profile.steps = 1;
  run(r);
  EXPECT_FALSE(fs::exists(fs::path(r.run.dir) / "profile"));
}

TEST_F(TrainerTest, StopRequestEndsAtAStepBoundary) {
  Trainer trainer(recipe(4, 1, "stopped"), {});
  std::atomic<bool> stop{true};
  const TrainSummary summary = trainer.train(stop);
  EXPECT_TRUE(summary.stopped_early);
  EXPECT_EQ(summary.steps_done, 0);
  EXPECT_TRUE(summary.final_sample.empty());  // a pre-empted job exits without sampling
}

// Fine-tuning: model.init replaces the random initialisation with a Hugging Face directory's
// weights (here a trained run's, exported), before the first step; a wrong path names the key.
TEST_F(TrainerTest, ModelInitStartsFromAHuggingFaceDirectory) {
  const fs::path exported = *dir_ / "init-hf";
  const std::unique_ptr<Trainer> source = train_base("init-source", exported);

  config::Recipe finetune = recipe(4, 1, "init-finetune");
  finetune.model.init = exported.string();
  Trainer trainer(finetune, {});
  const auto trained = source->model().named_parameters();
  const auto started = trainer.model().named_parameters();
  ASSERT_EQ(trained.size(), started.size());
  for (std::size_t i = 0; i < trained.size(); ++i) {
    EXPECT_TRUE(at::equal(trained[i].second, started[i].second)) << trained[i].first;
  }

  finetune.model.init = (*dir_ / "nowhere");
  try {
    Trainer refused(finetune, {});
    ADD_FAILURE() << "a missing model.init was accepted";
  } catch (const UsageError& error) {
    EXPECT_NE(std::string(error.what()).find("recipe key 'model.init'"), std::string::npos) << error.what();
  }
}

// model.vocab_size pads the tokenizer's ids with rows no id uses (for tensor parallelism to cut);
// fewer rows than the dataset's ids is refused naming the key.
TEST_F(TrainerTest, ModelVocabSizePadsTheEmbeddingAndMayNotCutIt) {
  config::Recipe r = recipe(4, 1, "vocab-padded");
  r.model.vocab_size = 320;
  Trainer padded(r, {});
  EXPECT_EQ(padded.model().config().vocab_size, 320);
  EXPECT_EQ(padded.model().output_weight().size(0), 320);
  r.model.vocab_size = 100;
  try {
    Trainer refused(r, {});
    ADD_FAILURE() << "100 rows for the byte tokenizer's 257 ids were accepted";
  } catch (const UsageError& error) {
    EXPECT_NE(std::string(error.what()).find("recipe key 'model.vocab_size': tiny has a vocabulary of 100, smaller "
                                             "than the dataset's 257"),
              std::string::npos)
        << error.what();
  }
}

// LoRA: the adapters train, the base stays exactly model.init's, and the optimizer holds only the
// adapters' state.
TEST_F(TrainerTest, LoraTrainsAdaptersOnTheFrozenBase) {
  const fs::path base = *dir_ / "lora-base";
  const std::unique_ptr<Trainer> source = train_base("lora-source", base);

  config::Recipe r = recipe(4, 1, "lora-run");
  r.model.init = base.string();
  r.lora.rank = 4;
  r.optim.lr = 3e-3;
  r.train.steps = 12;
  Trainer trainer(r, {});
  const std::optional<double> val_before = trainer.evaluate();
  std::atomic<bool> stop{false};
  const TrainSummary summary = trainer.train(stop);
  ASSERT_TRUE(val_before && summary.final_val_loss);
  EXPECT_LT(*summary.final_val_loss, *val_before - 0.01);
  const auto before = source->model().named_parameters();
  std::size_t frozen = 0;
  for (const auto& [name, tensor] : trainer.model().named_parameters()) {
    if (name.find(".lora_") != std::string::npos) {
      if (name.ends_with("lora_B.weight")) {
        EXPECT_GT(tensor.abs().max().item<double>(), 0) << name << " never moved";
      }
      continue;
    }
    EXPECT_TRUE(at::equal(tensor, before.at(frozen++).second)) << name << " changed";
  }
  EXPECT_EQ(frozen, before.size());
  const std::int64_t per_block = 4;  // c_attn, attn.c_proj, c_fc, mlp.c_proj
  ASSERT_EQ(static_cast<std::int64_t>(trainer.optimizer().parameters().size()),
            2 * per_block * trainer.model().config().layers);
  for (const optim::OptimizedParameter& p : trainer.optimizer().parameters()) {
    EXPECT_NE(p.name.find(".lora_"), std::string::npos) << p.name;
  }

  r.lora.targets = "q_proj";  // a Llama name on GPT-2
  try {
    Trainer refused(r, {});
    ADD_FAILURE() << "a target naming no layer was accepted";
  } catch (const UsageError& error) {
    EXPECT_NE(std::string(error.what()).find("recipe key 'lora.targets': LoRA target 'q_proj'"), std::string::npos)
        << error.what();
  }
}

TEST_F(TrainerTest, NonFiniteLossStopsWithTheStep) {
  testing_support::PoisonAfter poison(1);  // the weights NaN after step 1
  try {
    run(recipe(4, 1, "diverged"), &poison);
    FAIL() << "training went on with a NaN loss";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("loss is nan at step 2"), std::string::npos) << e.what();
  }
}

// Note [Steps read one late]: after each step, which steps' numbers were still to be read.
class RecordUnreadSteps : public TrainingHooks {
 public:
  void after_step(Trainer& trainer, std::int64_t step) override {
    testing::internal::CaptureStderr();
    trainer.read_queued_steps();  // logs each step it reads
    const std::string read = testing::internal::GetCapturedStderr();
    unread.push_back(read.find(str_cat("step ", step + 1, "/")) != std::string::npos);
  }
  std::vector<bool> unread;  // per step: still unread at its end
};

TEST_F(TrainerTest, StepsAreReadOneLateButTheFirstAndLast) {
  config::Recipe r = recipe(4, 1, "read-late");
  r.eval.interval = 0;  // an evaluation also reads at once
  RecordUnreadSteps hooks;
  const TrainSummary summary = run(r, &hooks);
  EXPECT_EQ(hooks.unread, (std::vector<bool>{false, true, true, true, true, false}));
  ASSERT_EQ(summary.losses.size(), 6u);
  ASSERT_EQ(summary.grad_norms.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_TRUE(std::isfinite(summary.losses[i]) && summary.grad_norms[i] > 0) << "step " << i;
  }
}

TEST_F(TrainerTest, ARunThatFailsInsideTheProfileWindowLeavesTheProfilerOff) {
  config::Recipe r = recipe(4, 1, "profile-failed");
  r.profile.start_step = 2;
  r.profile.steps = 3;  // the loss turns NaN at step 3, inside the window
  testing_support::PoisonAfter poison(1);  // the weights NaN after step 1
  EXPECT_THROW(run(r, &poison), Error);
  EXPECT_FALSE(fs::exists(fs::path(r.run.dir) / "profile"));
  EXPECT_FALSE(torch::profiler::impl::profilerEnabled());
  // And the next run's window records.
  r = recipe(4, 1, "profile-after-failure");
  r.profile.start_step = 2;
  r.profile.steps = 1;
  run(r);
  EXPECT_TRUE(read_file(fs::path(r.run.dir) / "profile/rank0.summary.txt").starts_with("step 2: "));
}

std::string usage_error(const config::Recipe& r) {
  try {
    std::atomic<bool> stop{true};
    Trainer(r, {}).train(stop);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST_F(TrainerTest, InconsistentRecipesNameTheKey) {
  config::Recipe r = recipe(4, 1, "bad");
  r.train.global_batch_tokens = 100;  // not a multiple of 4 x 32
  EXPECT_NE(usage_error(r).find("'train.global_batch_tokens'"), std::string::npos);
  r = recipe(4, 1, "bad");
  r.train.seq_len = 100000;  // longer than the model's context
  r.train.global_batch_tokens = 4 * 100000;
  EXPECT_NE(usage_error(r).find("'train.seq_len'"), std::string::npos);
  r = recipe(4, 1, "bad");
  r.data.dataset = *dir_ / "missing";
  EXPECT_NE(usage_error(r).find("'data.dataset'"), std::string::npos);
  r = recipe(4, 1, "bad");
  r.precision.dtype = "bf16";
  EXPECT_NE(usage_error(r).find("'precision.dtype'"), std::string::npos);
  r = recipe(4, 1, "bad");
  r.model.preset = "gpt5";
  EXPECT_NE(usage_error(r).find("gpt5"), std::string::npos);
}

// Automatic preparation writes plaintext: with a dataset key it is refused, and nothing is written.
TEST_F(TrainerTest, AKeyedDatasetIsNotPreparedAutomatically) {
  config::Recipe r = recipe(4, 1, "keyed");
  r.data.dataset = *dir_ / "keyed-data";
  r.data.inputs = *dir_ / "corpus.txt";
  std::ofstream(r.data.inputs) << "Private notes.\n";
  r.data.key = "file:" + (*dir_ / "no-such-kek");
  EXPECT_NE(usage_error(r).find("'data.key'"), std::string::npos);
  EXPECT_FALSE(fs::exists(r.data.dataset));
}

// A recipe names chat inputs and their template; the dataset it prepares trains on the answers.
TEST_F(TrainerTest, AChatRecipePreparesItsDatasetWithTheTemplate) {
  config::Recipe r = chat_recipe("chat", counting_records(), "none");  // the byte tokenizer has no chat tokens
  r.train.steps = 2;
  r.eval.interval = 0;
  const TrainSummary summary = run(r);
  EXPECT_EQ(summary.losses.size(), 2u);
  const data::DatasetManifest manifest = data::read_manifest(r.data.dataset);
  EXPECT_TRUE(manifest.has_loss_mask);
  EXPECT_EQ(manifest.input_format, "chat");
  EXPECT_EQ(manifest.chat_template, "none");

  r.data.format = "parquet";
  EXPECT_NE(usage_error(r).find("'data.format'"), std::string::npos);
  r.data.format = "chat";
  r.data.chat_template = "vicuna";
  EXPECT_NE(usage_error(r).find("'data.chat_template'"), std::string::npos);
}

// data.document_masking reaches the model in training and validation: the same first step and
// validation on the same packed conversations score differently with attention cut at each one.
TEST_F(TrainerTest, DocumentMaskingCutsAttentionAtEachConversation) {
  config::Recipe r = chat_recipe("packed", counting_records(), "none");
  r.train.steps = 1;
  r.optim.warmup_steps = 0;
  r.eval.interval = 1;
  const TrainSummary across = run(r);
  r.run.dir = *dir_ / "packed-masked";
  r.data.document_masking = true;
  const TrainSummary within = run(r);
  ASSERT_EQ(across.losses.size(), 1u);
  ASSERT_EQ(within.losses.size(), 1u);
  EXPECT_TRUE(std::isfinite(within.losses[0]));
  EXPECT_NE(within.losses[0], across.losses[0]);
  ASSERT_TRUE(across.final_val_loss && within.final_val_loss);
  EXPECT_NE(*within.final_val_loss, *across.final_val_loss);
}

// data.packing = documents: each conversation whole in one sequence, padded; training and
// validation see other sequences than the stream's windows, and an unknown packing names the key.
TEST_F(TrainerTest, PackedConversationsTrainWhole) {
  config::Recipe r = chat_recipe("whole", counting_records(), "none");
  r.train.steps = 1;
  r.optim.warmup_steps = 0;
  r.eval.interval = 1;
  r.data.document_masking = true;
  const TrainSummary stream = run(r);
  r.run.dir = *dir_ / "whole-packed";
  r.data.packing = "documents";
  const TrainSummary packed = run(r);
  ASSERT_EQ(packed.losses.size(), 1u);
  EXPECT_TRUE(std::isfinite(packed.losses[0]));
  EXPECT_NE(packed.losses[0], stream.losses[0]);
  ASSERT_TRUE(stream.final_val_loss && packed.final_val_loss);
  EXPECT_NE(*packed.final_val_loss, *stream.final_val_loss);
  // The rate of tokens counts text, not the padding after a sequence's last conversation.
  EXPECT_EQ(stream.text_tokens, r.train.global_batch_tokens);
  EXPECT_GT(packed.text_tokens, 0);
  EXPECT_LT(packed.text_tokens, r.train.global_batch_tokens);
  r.data.packing = "greedy";
  EXPECT_NE(usage_error(r).find("'data.packing'"), std::string::npos);
}

// A chat fine-tune's text sample prompts the model as it is trained: eval.sample_prompt as a user
// turn in the dataset's template, the answer ended by the template's end-of-turn token.
TEST_F(TrainerTest, AChatFineTunesSampleIsAConversationInItsTemplate) {
  std::string records;
  for (int i = 0; i < 100; ++i) {
    records += R"({"messages": [{"role": "user", "content": "Who wrote Emma?"}, )"
               R"({"role": "assistant", "content": "Jane Austen."}]})"
               "\n";
  }
  config::Recipe r = chat_recipe("chat-sample", records, "chatml");
  r.data.tokenizer = "hf:" ALBION_SOURCE_DIR "/tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json";
  r.train.steps = 40;
  r.optim.lr = 3e-3;
  r.eval.interval = 0;
  r.eval.sample_prompt = "Who wrote Emma?";
  r.eval.sample_tokens = 12;
  const TrainSummary summary = run(r);
  const std::string header = "<|im_start|>user\nWho wrote Emma?<|im_end|>\n<|im_start|>assistant\n";
  ASSERT_TRUE(summary.final_sample.starts_with(header)) << summary.final_sample;
  // Forty steps on one answer teach it, and its end of turn ends the sample.
  EXPECT_EQ(summary.final_sample.substr(header.size()), "Jane Austen.") << summary.final_sample;
}

// eval.choices (runtime/train/choice_score.h): trained for 30 steps on Persuasion, the tiny model
// already answers questions whose wrong choices are bytes English text never uses, and at init it
// does not; the trainer's own evaluation answers them alike and logs it.
TEST_F(TrainerTest, AModelTrainedOnEnglishPrefersItToImprobableBytes) {
  const auto tokenizer = tokenizers::load_tokenizer("byte");
  const std::string text =
      "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who, for his own amusement, never took up "
      "any book but the Baronetage; there he found occupation for an idle hour, and consolation in a distressed one";
  std::vector<data::ChoiceQuestion> questions;
  std::string questions_file;  // the same as eval.choices, for the trainer's evaluation
  for (std::size_t start = 0; start + 40 <= text.size(); start += 10) {
    const std::string answer = text.substr(start + 30, 10);
    const std::string control_bytes = "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c";
    questions.push_back({text.substr(0, start + 30), {std::string(10, '~'), answer, "{|}^`{|}^`", control_bytes}, 1});
    questions_file += nlohmann::json{{"context", questions.back().context},
                                     {"choices", questions.back().choices},
                                     {"answer", 1}}
                          .dump() +
                      "\n";
  }
  config::Recipe r = recipe(8, 1, "choices");
  r.train.seq_len = 64;
  r.train.global_batch_tokens = 64 * 8;
  r.train.steps = 30;
  r.eval.interval = 30;
  r.eval.batches = 1;
  r.eval.sample_tokens = 8;
  r.eval.choices = dir_->write("questions.jsonl", questions_file);
  Trainer trainer(r, {});
  auto answered = [&] {
    ChoiceTally tally;
    at::NoGradGuard no_grad;
    const models::EvalModeScope eval_mode(trainer.model());
    for (const data::ChoiceQuestion& question : questions) {
      tally.add(question, choice_likelihoods(trainer.model(), *tokenizer, question, at::kCPU));
    }
    return tally;
  };
  const ChoiceTally at_init = answered();
  std::atomic<bool> stop{false};
  const TrainSummary summary = trainer.train(stop);
  const ChoiceTally trained = answered();
  EXPECT_EQ(trained.correct, trained.questions);
  EXPECT_EQ(trained.correct_norm, trained.questions);
  EXPECT_LT(at_init.correct, at_init.questions);
  // The trainer's evaluation (eval.choices) answered them alike, and logged it.
  ASSERT_TRUE(summary.final_choices.has_value());
  EXPECT_EQ(summary.final_choices->questions, static_cast<std::int64_t>(questions.size()));
  EXPECT_EQ(summary.final_choices->correct, trained.correct);
  EXPECT_EQ(summary.final_choices->correct_norm, trained.correct_norm);
  std::ifstream metrics(r.run.dir + "/metrics.jsonl");
  std::string records((std::istreambuf_iterator<char>(metrics)), std::istreambuf_iterator<char>());
  EXPECT_NE(records.find(R"("choices_acc_norm":1.0)"), std::string::npos) << records;

  // A questions file that is not there, or malformed, is refused before training, naming the key.
  for (const std::string& file : {*dir_ / "no-such.jsonl", dir_->write("bad.jsonl", "{}\n")}) {
    r.eval.choices = file;
    try {
      Trainer refused(r, {});
      ADD_FAILURE() << file << " was accepted";
    } catch (const UsageError& error) {
      EXPECT_NE(std::string(error.what()).find("recipe key 'eval.choices': "), std::string::npos) << error.what();
    }
  }
}

}  // namespace
}  // namespace albion::train
