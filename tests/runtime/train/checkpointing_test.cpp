// File: tests/runtime/train/checkpointing_test.cpp
// The trainer with real checkpoints (encrypted files, one process): a run that died after its
// step-4 checkpoint, resumed from it, gives bit-identical losses to the uninterrupted run, with
// asynchronous and synchronous saves; a pre-empted run saves where it stopped; a damaged
// checkpoint stops the resume with an IntegrityError instead of training from scratch.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/keys/key_file.h"
#include "runtime/base/check.h"
#include "runtime/config/recipe.h"
#include "runtime/data/prepare.h"
#include "runtime/train/checkpointing.h"
#include "runtime/train/trainer.h"
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

  static TempDir* dir_;
};
TempDir* CheckpointingTest::dir_ = nullptr;

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

}  // namespace
}  // namespace albion::train
