// File: tests/runtime/train/checkpointing_test.cpp
// The trainer with real checkpoints (encrypted files, one process): a run that died after its
// step-4 checkpoint, resumed from it, gives bit-identical losses to the uninterrupted run, with
// asynchronous and synchronous saves; a pre-empted run saves where it stopped; a damaged
// checkpoint stops the resume with an IntegrityError instead of training from scratch.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/keys/key_file.h"
#include "runtime/base/check.h"
#include "runtime/config/recipe.h"
#include "runtime/data/prepare.h"
#include "runtime/train/checkpointing.h"
#include "runtime/models/hf_import.h"
#include "runtime/train/trainer.h"
#include "tests/runtime/train/training_state_support.h"
#include "tests/support/cuda_available.h"
#include "tests/support/hugging_face_directory.h"
#include "tests/support/small_dataset.h"
#include "tests/support/temp_dir.h"

namespace albion::train {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

class CheckpointingTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    testing_support::prepare_small_dataset(*dir_ / "data");
    checkpoint::generate_key_file(*dir_ / "kek", checkpoint::KeyFileOverwrite::kRefuse);
  }
  static void TearDownTestSuite() { delete dir_; }

  static config::Recipe recipe(const std::string& run, std::int64_t steps) {
    config::Recipe r;
    r.run.dir = *dir_ / run;
    r.run.device = "cpu";
    r.data.dataset = *dir_ / "data";
    r.model.preset = "tiny";
    r.train.seq_len = 32;
    r.train.micro_batch = 2;
    r.train.global_batch_tokens = 32 * 4;
    r.train.steps = steps;
    r.optim.warmup_steps = 2;
    r.eval.interval = 0;
    r.eval.sample_tokens = 0;
    r.log.interval = 1;
    r.log.tensorboard = false;
    return r;
  }

  struct Run {
    TrainSummary summary;
    std::vector<double> stalls;
  };

  // Trains `r` with checkpoints in `checkpoints` every `interval` steps (0: resume only).
  static Run train(const config::Recipe& r, const fs::path& checkpoints, std::int64_t interval, bool async,
                   bool stop_now = false) {
    const std::unique_ptr<checkpoint::KeyProvider> key = checkpoint::open_key_provider(str_cat("file:", *dir_ / "kek"));
    checkpoint::SingleProcessGroup group;
    CheckpointSettings settings;
    settings.options.directory = checkpoints;
    settings.options.key = key.get();
    settings.options.keep = 0;
    settings.interval = interval;
    settings.async = async;
    settings.recipe_ini = config::resolved_recipe_ini(r);
    CheckpointHooks hooks(settings, group);
    std::atomic<bool> stop{stop_now};
    Trainer trainer(r, {}, nullptr, &hooks);
    Run out{trainer.train(stop), {}};
    out.stalls = hooks.stall_seconds();
    return out;
  }

  // Why resuming `r` from `checkpoints` is refused (a UsageError's message); "" and a failure if it resumes.
  static std::string resume_refusal(const config::Recipe& r, const fs::path& checkpoints) {
    try {
      train(r, checkpoints, 0, true);
    } catch (const UsageError& e) {
      return e.what();
    }
    ADD_FAILURE() << r.run.dir << " resumed from " << checkpoints;
    return "";
  }

  static TempDir* dir_;
};
TempDir* CheckpointingTest::dir_ = nullptr;

// What a checkpoint's state records is read without throwing, whatever the JSON holds.
TEST(RecordedState, FieldsOfAnotherTypeReadAsNotRecorded) {
  const std::string state = R"({"tokenizer": {"spec": 5, "hash": "ab", "chat_template": null},
                                "lora_base": {"directory": [], "sha256": "cd", "vocab_size": "x"}})";
  const RecordedTokenizer tokenizer = recorded_tokenizer(state);
  EXPECT_EQ(tokenizer.spec, "");
  EXPECT_EQ(tokenizer.hash, "ab");
  EXPECT_EQ(tokenizer.chat_template, "");
  const LoraBase base = recorded_lora_base(state);
  EXPECT_EQ(base.directory, "");
  EXPECT_EQ(base.sha256, "cd");
  EXPECT_EQ(base.vocab_size, 0);
  EXPECT_TRUE(recorded_lora_base("not json").empty());
}

TEST_F(CheckpointingTest, ResumedFromFilesEqualsUninterruptedBitForBit) {
  const std::vector<double> uninterrupted = train(recipe("whole", 8), *dir_ / "whole-ckpt", 0, true).summary.losses;
  ASSERT_EQ(uninterrupted.size(), 8u);
  for (const bool async : {true, false}) {
    const fs::path checkpoints = *dir_ / (async ? "async-ckpt" : "sync-ckpt");
    const Run first = train(recipe(async ? "async-a" : "sync-a", 8), checkpoints, 4, async);
    EXPECT_EQ(first.summary.losses, uninterrupted);  // checkpointing changes nothing
    std::vector<checkpoint::CommittedCheckpoint> saved = checkpoint::list_checkpoints(checkpoints);
    ASSERT_EQ(saved.size(), 2u);
    EXPECT_EQ(saved[0].step, 4);
    EXPECT_EQ(saved[1].step, 8);
    EXPECT_EQ(first.stalls.size(), 2u);
    // As if the job had died after step 4's checkpoint.
    checkpoint::remove_checkpoint(saved[1].path);
    const Run resumed = train(recipe(async ? "async-b" : "sync-b", 8), checkpoints, 0, async);
    ASSERT_EQ(resumed.summary.losses.size(), 4u);
    for (std::size_t i = 0; i < 4; ++i) {
      EXPECT_EQ(resumed.summary.losses[i], uninterrupted[4 + i]) << (async ? "async" : "sync") << ", step " << 4 + i;
    }
    EXPECT_EQ(resumed.summary.steps_done, 8);
    std::ifstream metrics(*dir_ / (async ? "async-b/metrics.jsonl" : "sync-b/metrics.jsonl"));
    std::string marker;
    std::getline(metrics, marker);
    EXPECT_EQ(marker, R"({"step":4,"event":"resumed"})");
  }
}

TEST_F(CheckpointingTest, PreemptedRunSavesWhereItStopped) {
  const fs::path checkpoints = *dir_ / "preempted-ckpt";
  train(recipe("pre-a", 3), checkpoints, 100, true);  // ends after 3 steps: saved by finish()
  ASSERT_EQ(checkpoint::newest_checkpoint(checkpoints)->step, 3);
  const Run stopped = train(recipe("pre-b", 8), checkpoints, 100, true, /*stop_now=*/true);
  EXPECT_TRUE(stopped.summary.stopped_early);
  EXPECT_EQ(stopped.summary.steps_done, 3);  // resumed at 3, stopped before training further
  EXPECT_EQ(checkpoint::newest_checkpoint(checkpoints)->step, 3);
}

// Note [Steps read one late]: step 2's loss would be read after step 3 was queued, but the
// checkpoint after step 2 reads it first, so the NaN stops the run instead of being saved.
TEST_F(CheckpointingTest, ADivergedStepIsNeverSaved) {
  const config::Recipe r = recipe("diverged", 8);
  const std::unique_ptr<checkpoint::KeyProvider> key = checkpoint::open_key_provider(str_cat("file:", *dir_ / "kek"));
  checkpoint::SingleProcessGroup group;
  CheckpointSettings settings;
  settings.options.directory = *dir_ / "diverged-ckpt";
  settings.options.key = key.get();
  settings.interval = 3;
  settings.async = false;
  settings.recipe_ini = config::resolved_recipe_ini(r);
  CheckpointHooks checkpoints(settings, group);
  testing_support::PoisonAfter hooks(1, &checkpoints);  // step 2's loss is NaN; its checkpoint is due
  std::atomic<bool> stop{false};
  Trainer trainer(r, {}, nullptr, &hooks);
  try {
    trainer.train(stop);
    FAIL() << "training went on with a NaN loss";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("loss is nan at step 2"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(checkpoint::list_checkpoints(*dir_ / "diverged-ckpt").empty());
}

TEST_F(CheckpointingTest, DamagedCheckpointStopsTheResume) {
  const fs::path checkpoints = *dir_ / "damaged-ckpt";
  train(recipe("dmg-a", 2), checkpoints, 2, false);
  const fs::path shard = checkpoint::newest_checkpoint(checkpoints)->path / "shard-00000.h5";
  std::fstream file(shard, std::ios::in | std::ios::out | std::ios::binary);
  const auto middle = static_cast<std::streamoff>(fs::file_size(shard) / 2);
  file.seekg(middle);
  const char byte = static_cast<char>(file.get());
  file.seekp(middle);
  file.put(static_cast<char>(byte ^ 0x01));
  file.close();
  EXPECT_THROW(train(recipe("dmg-b", 4), checkpoints, 2, false), IntegrityError);
}

// The loader's position counts sequences as the saving run cut them: a resume with data.packing
// changed is refused, naming the key; with the same packing it goes on.
TEST_F(CheckpointingTest, AResumeKeepsTheDataPacking) {
  const fs::path checkpoints = *dir_ / "packing-ckpt";
  config::Recipe r = recipe("packing-a", 2);
  r.data.packing = "documents";
  train(r, checkpoints, 2, false);
  r.run.dir = *dir_ / "packing-b";
  r.data.packing = "stream";
  r.train.steps = 4;
  const std::string refusal = resume_refusal(r, checkpoints);
  EXPECT_NE(refusal.find("'data.packing' = stream"), std::string::npos) << refusal;
  r.data.packing = "documents";
  EXPECT_EQ(train(r, checkpoints, 2, false).summary.steps_done, 4);
}

// Muon's checkpoints (optim.name = muon) hold one moment per hidden matrix: a resume from files
// continues the run bit for bit, and a resume with the other optimizer is refused, naming the key.
TEST_F(CheckpointingTest, MuonResumesFromFilesAndKeepsItsOptimizer) {
  config::Recipe whole = recipe("muon-whole", 4);
  whole.optim.name = "muon";
  const std::vector<double> uninterrupted = train(whole, *dir_ / "muon-whole-ckpt", 0, false).summary.losses;
  const fs::path checkpoints = *dir_ / "muon-ckpt";
  config::Recipe r = recipe("muon-a", 4);
  r.optim.name = "muon";
  EXPECT_EQ(train(r, checkpoints, 2, false).summary.losses, uninterrupted);
  // As if the job had died after step 2's checkpoint.
  checkpoint::remove_checkpoint(checkpoint::list_checkpoints(checkpoints).at(1).path);
  r.run.dir = *dir_ / "muon-b";
  r.optim.name = "adamw";
  const std::string refusal = resume_refusal(r, checkpoints);
  EXPECT_NE(refusal.find("holds muon's state, but recipe key 'optim.name' = adamw"), std::string::npos) << refusal;
  r.optim.name = "muon";
  const Run resumed = train(r, checkpoints, 2, false);
  ASSERT_EQ(resumed.summary.losses.size(), 2u);
  EXPECT_EQ(resumed.summary.losses[0], uninterrupted[2]);
  EXPECT_EQ(resumed.summary.losses[1], uninterrupted[3]);
}

// LoRA: checkpoints hold the adapters and their moments only, a resume continues the run bit for
// bit on the same base (dropout included), and refuses a base whose weights changed or a recipe without LoRA.
TEST_F(CheckpointingTest, LoraCheckpointsHoldTheAdaptersAndResumeOnTheSameBase) {
  const fs::path base = *dir_ / "lora-base";
  {
    Trainer source(recipe("lora-source", 3), {});
    std::atomic<bool> stop{false};
    source.train(stop);
    testing_support::write_hugging_face_directory(source.model(), base);
  }
  auto lora = [&](const std::string& run) {
    config::Recipe r = recipe(run, 8);
    r.model.init = base.string();
    r.lora.rank = 4;
    r.lora.targets = "c_attn, mlp.c_proj";
    r.lora.dropout = 0.1;  // draws from the generators the checkpoint saves
    return r;
  };
  const std::vector<double> uninterrupted = train(lora("lora-whole"), *dir_ / "lora-whole-ckpt", 0, true).summary.losses;
  const fs::path checkpoints = *dir_ / "lora-ckpt";
  EXPECT_EQ(train(lora("lora-a"), checkpoints, 4, true).summary.losses, uninterrupted);

  std::vector<checkpoint::CommittedCheckpoint> saved = checkpoint::list_checkpoints(checkpoints);
  ASSERT_EQ(saved.size(), 2u);
  {
    const std::unique_ptr<checkpoint::KeyProvider> key = checkpoint::open_key_provider(str_cat("file:", *dir_ / "kek"));
    checkpoint::CheckpointReader reader(saved[0].path, key.get());
    std::size_t weights = 0;
    for (const checkpoint::TensorInfo& info : reader.tensors()) {
      if (!info.name.starts_with("model.")) continue;
      ++weights;
      EXPECT_TRUE(info.name.ends_with(".c_attn.lora_A.weight") || info.name.ends_with(".c_attn.lora_B.weight") ||
                  info.name.ends_with(".mlp.c_proj.lora_A.weight") || info.name.ends_with(".mlp.c_proj.lora_B.weight"))
          << info.name << " is not an adapter";
    }
    EXPECT_EQ(weights, 2u * 2u * 4u);  // A and B, two targets, four blocks of the tiny preset
    const LoraBase recorded = recorded_lora_base(reader.manifest().state_json);
    EXPECT_EQ(recorded.directory, fs::absolute(base).lexically_normal().string());
    EXPECT_EQ(recorded.sha256, models::hugging_face_weights_digest(base));
  }

  checkpoint::remove_checkpoint(saved[1].path);  // as if the job had died after step 4's
  const Run resumed = train(lora("lora-b"), checkpoints, 0, true);
  ASSERT_EQ(resumed.summary.losses.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(resumed.summary.losses[i], uninterrupted[4 + i]) << "step " << 4 + i;

  config::Recipe whole_model = lora("lora-c");
  whole_model.lora.rank = 0;
  const std::string refusal = resume_refusal(whole_model, checkpoints);
  EXPECT_NE(refusal.find("the checkpoint holds LoRA adapters"), std::string::npos) << refusal;

  // Another base with the same shapes: one weight changed, in place.
  const fs::path file = base / "model.safetensors";
  std::fstream bytes(file, std::ios::in | std::ios::out | std::ios::binary);
  const auto last = static_cast<std::streamoff>(fs::file_size(file) - 1);
  bytes.seekg(last);
  const char byte = static_cast<char>(bytes.get());
  bytes.seekp(last);
  bytes.put(static_cast<char>(byte ^ 0x01));
  bytes.close();
  try {
    train(lora("lora-d"), checkpoints, 0, true);
    ADD_FAILURE() << "adapters were resumed on changed base weights";
  } catch (const IntegrityError& error) {
    EXPECT_NE(std::string(error.what()).find("LoRA adapters were trained on base weights"), std::string::npos)
        << error.what();
  }
}

// On a GPU (suite CheckpointingCuda, label gpu): the device-to-pinned-host snapshot holds exactly
// the device's values at the step it was taken (the copies are asynchronous; the capture waits
// for them), later captures into the same buffers hold the later values, and a run resumed from
// a GPU checkpoint continues the uninterrupted one (closely: GPU reductions are not bitwise
// reproducible, so no bit-for-bit claim here).
class CheckpointingCuda : public CheckpointingTest {
 protected:
  static config::Recipe on_gpu(const std::string& run, std::int64_t steps) {
    config::Recipe r = recipe(run, steps);
    r.run.device = "cuda";
    return r;
  }
};

// After every step: a capture into reused buffers, each slice compared with the device tensor
// it copied before the next step changes it.
class CompareSnapshots final : public TrainingHooks {
 public:
  void after_step(Trainer& trainer, std::int64_t step) override {
    const TrainingState state = capture_training_state(trainer, step + 1, &buffers_);
    std::map<std::string, at::Tensor> live;
    for (auto& [name, tensor] : trainer.model().named_parameters()) live["model." + name] = tensor;
    for (const optim::OptimizedParameter& p : trainer.optimizer().parameters()) {
      live["optim.exp_avg." + p.name] = p.exp_avg;
      live["optim.exp_avg_sq." + p.name] = p.exp_avg_sq;
    }
    for (const StateSlice& slice : state.slices) {
      ASSERT_EQ(live.count(slice.name), 1u) << slice.name;
      const at::Tensor& device = live.at(slice.name);
      ASSERT_TRUE(device.is_cuda()) << slice.name;
      EXPECT_TRUE(slice.data.is_pinned()) << slice.name;
      EXPECT_TRUE(slice.data.equal(device.detach().reshape({-1}).cpu())) << slice.name << " after step " << step;
    }
    ++captures;
    slices = state.slices.size();
  }
  int captures = 0;
  std::size_t slices = 0;

 private:
  SnapshotBuffers buffers_;
};

TEST_F(CheckpointingCuda, SnapshotsHoldTheDeviceValues) {
  ALBION_SKIP_WITHOUT_CUDA();
  CompareSnapshots hooks;
  Trainer trainer(on_gpu("cuda-snap", 3), {}, nullptr, &hooks);
  std::atomic<bool> stop{false};
  trainer.train(stop);
  EXPECT_EQ(hooks.captures, 3);
  EXPECT_GT(hooks.slices, 0u);
}

TEST_F(CheckpointingCuda, ResumedRunContinuesTheUninterruptedOne) {
  ALBION_SKIP_WITHOUT_CUDA();
  const std::vector<double> uninterrupted = train(on_gpu("cuda-whole", 6), *dir_ / "cuda-whole-ckpt", 0, true).summary.losses;
  ASSERT_EQ(uninterrupted.size(), 6u);
  const fs::path checkpoints = *dir_ / "cuda-ckpt";
  train(on_gpu("cuda-a", 6), checkpoints, 3, /*async=*/true);
  std::vector<checkpoint::CommittedCheckpoint> saved = checkpoint::list_checkpoints(checkpoints);
  ASSERT_EQ(saved.size(), 2u);
  checkpoint::remove_checkpoint(saved[1].path);  // as if the job had died after step 3's checkpoint
  const Run resumed = train(on_gpu("cuda-b", 6), checkpoints, 0, true);
  ASSERT_EQ(resumed.summary.losses.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(resumed.summary.losses[i], uninterrupted[3 + i], 1e-2 * std::abs(uninterrupted[3 + i])) << "step " << 3 + i;
  }
}

}  // namespace
}  // namespace albion::train
