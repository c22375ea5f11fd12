// File: tests/runtime/parallel/data_parallel_test.cpp
// Under mpirun -np 4: data parallelism computes what one process computes. Each rank first trains
// alone (the reference: the whole global batch through gradient accumulation), then DDP trains on
// 1, 2 and 4 ranks (sub-communicators split from the world) and ZeRO-1 on 2 and 4, each over the
// same global batch, for 20 steps; every step's loss must match the reference to 1e-5 relative.
// LoRA fine-tuning and activation checkpointing likewise, over DDP and ZeRO-1 on 4 ranks. Then
// resharding: a ZeRO-1 state captured on 4 ranks resumes on 4 (ZeRO-1), 2 (DDP) and 1 rank,
// from memory and from real encrypted checkpoint files written by all 4 ranks.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <memory>

#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/keys/key_file.h"
#include "collectives/mpi_communicator.h"
#include "launch/mpi_rank_group.h"
#include "runtime/data/prepare.h"
#include "runtime/parallel/data_parallel.h"
#include "runtime/train/checkpointing.h"
#include "runtime/train/trainer.h"
#include "tests/runtime/train/training_state_support.h"
#include "tests/support/hugging_face_directory.h"
#include "tests/support/small_dataset.h"
#include "tests/support/temp_dir.h"

namespace albion::parallel {
namespace {

using testing_support::TempDir;

constexpr std::int64_t kSeqLen = 32;
constexpr std::int64_t kGlobalSequences = 8;  // per step, over all ranks
constexpr std::int64_t kSteps = 20;

class DataParallelTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
    // Rank 0 prepares the dataset; everyone uses its directory.
    std::string path;
    if (world_rank_ == 0) {
      dir_ = new TempDir();
      testing_support::prepare_small_dataset(*dir_ / "data");
      path = dir_->path();
    }
    int length = static_cast<int>(path.size());
    MPI_Bcast(&length, 1, MPI_INT, 0, MPI_COMM_WORLD);
    path.resize(static_cast<std::size_t>(length));
    MPI_Bcast(path.data(), length, MPI_CHAR, 0, MPI_COMM_WORLD);
    shared_dir_ = path;
    world_ = std::make_shared<collectives::MpiCommunicator>(MPI_COMM_WORLD, "world", nullptr);
  }
  static void TearDownTestSuite() {
    world_.reset();
    MPI_Barrier(MPI_COMM_WORLD);
    delete dir_;
  }

  static config::Recipe recipe(int data_ranks, const std::string& run) {
    config::Recipe r;
    r.run.dir = shared_dir_ + "/" + run + "-rank" + std::to_string(world_rank_);
    r.run.device = "cpu";
    r.data.dataset = shared_dir_ + "/data";
    r.model.preset = "tiny";
    r.train.seq_len = kSeqLen;
    r.train.micro_batch = 2;
    r.train.global_batch_tokens = kSeqLen * kGlobalSequences;  // accumulation: 4 / data_ranks
    r.train.steps = kSteps;
    r.optim.warmup_steps = 3;
    r.eval.interval = 0;
    r.eval.sample_tokens = 0;
    r.log.interval = kSteps;
    r.log.tensorboard = false;
    (void)data_ranks;
    return r;
  }

  static std::vector<double> train(const config::Recipe& r, train::Parallelism* parallel) {
    std::atomic<bool> stop{false};
    const int rank = parallel ? parallel->data_parallel_rank() : 0;
    const int size = parallel ? parallel->data_parallel_size() : 1;
    train::Trainer trainer(r, {rank, size, 0}, parallel);
    return trainer.train(stop).losses;
  }

  // Ranks in groups of `group_size` consecutive world ranks.
  static std::shared_ptr<collectives::Communicator> group_of(int group_size) {
    return world_->split(world_rank_ / group_size, world_rank_, "data");
  }

  static void expect_same_losses(const std::vector<double>& actual, const std::vector<double>& expected,
                                 const std::string& what) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_LT(std::abs(actual[i] - expected[i]) / std::abs(expected[i]), 1e-5)
          << what << ", step " << i << ": " << actual[i] << " vs " << expected[i];
    }
  }

  static const std::vector<double>& reference() {
    static const std::vector<double> losses = train(recipe(1, "alone"), nullptr);
    return losses;
  }

  static inline int world_rank_ = 0;
  static inline int world_size_ = 1;
  static inline TempDir* dir_ = nullptr;
  static inline std::string shared_dir_;
  static inline std::shared_ptr<collectives::Communicator> world_;
};

TEST_F(DataParallelTest, DdpOn1And2And4RanksMatchesOneProcess) {
  ASSERT_EQ(world_size_, 4) << "run under mpirun -np 4";
  ASSERT_EQ(reference().size(), static_cast<std::size_t>(kSteps));
  for (int ranks : {1, 2, 4}) {
    config::ParallelConfig config;
    config.bucket_mb = 0.25;  // several buckets for the tiny model, so overlap is exercised
    DataParallel ddp(group_of(ranks), config);
    const std::vector<double> losses = train(recipe(ranks, "ddp" + std::to_string(ranks)), &ddp);
    EXPECT_GT(ddp.buckets().bucket_count(), 1u);
    expect_same_losses(losses, reference(), "DDP on " + std::to_string(ranks) + " rank(s)");
  }
}

TEST_F(DataParallelTest, DdpWithoutOverlapMatchesOneProcess) {
  config::ParallelConfig config;
  config.overlap = false;
  DataParallel ddp(group_of(4), config);
  expect_same_losses(train(recipe(4, "ddp-sync"), &ddp), reference(), "DDP synchronising after backward");
}

// With activation checkpointing the parameters' gradients appear during the recomputed blocks'
// own backward passes; the overlapped buckets must still fire and reduce them all, for DDP and
// ZeRO-1.
TEST_F(DataParallelTest, ActivationCheckpointingUnderDdpAndZeroMatchesOneProcess) {
  auto recomputing = [](const std::string& run) {
    config::Recipe r = recipe(4, run);
    r.model.activation_checkpointing = 1;
    return r;
  };
  config::ParallelConfig config;
  config.bucket_mb = 0.25;
  DataParallel ddp(group_of(4), config);
  expect_same_losses(train(recomputing("recompute-ddp4"), &ddp), reference(), "recomputing, DDP on 4 ranks");
  EXPECT_GT(ddp.buckets().bucket_count(), 1u);
  ZeroOptimizer zero(group_of(4));
  expect_same_losses(train(recomputing("recompute-zero4"), &zero), reference(), "recomputing, ZeRO-1 on 4 ranks");
}

TEST_F(DataParallelTest, ZeroOneMatchesDdpAndShardsOptimizerState) {
  for (int ranks : {2, 4}) {
    ZeroOptimizer zero(group_of(ranks));
    config::Recipe r = recipe(ranks, "zero" + std::to_string(ranks));
    std::atomic<bool> stop{false};
    train::Trainer trainer(r, {zero.data_parallel_rank(), ranks, 0}, &zero);
    const std::vector<double> losses = trainer.train(stop).losses;
    expect_same_losses(losses, reference(), "ZeRO-1 on " + std::to_string(ranks) + " ranks");
    // AdamW moments: 8 bytes per parameter, split over the ranks (the shards differ by at most
    // one element).
    std::int64_t parameters = 0;
    for (const auto& p : trainer.optimizer().parameters()) parameters += p.parameter.numel();
    const std::int64_t state = zero.optimizer_state_bytes(trainer);
    EXPECT_LE(std::abs(state - 8 * parameters / ranks), 8) << state << " bytes on one of " << ranks;
  }
}

// LoRA: only the adapters are broadcast, bucketed, sharded and updated; over the same frozen base
// DDP and ZeRO-1 still compute what one process computes.
TEST_F(DataParallelTest, LoraUnderDdpAndZeroMatchesOneProcess) {
  const std::string base = shared_dir_ + "/lora-base";
  if (world_rank_ == 0) {
    config::Recipe source = recipe(1, "lora-source");
    source.train.steps = 2;
    source.optim.warmup_steps = 1;
    train::Trainer trainer(source, {});
    std::atomic<bool> stop{false};
    trainer.train(stop);
    testing_support::write_hugging_face_directory(trainer.model(), base);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  auto lora = [&](const std::string& run) {
    config::Recipe r = recipe(1, run);
    r.model.init = base;
    r.lora.rank = 4;
    return r;
  };
  const std::vector<double> alone = train(lora("lora-alone"), nullptr);
  config::ParallelConfig config;
  config.bucket_mb = 0.05;  // several buckets of adapters
  DataParallel ddp(group_of(4), config);
  expect_same_losses(train(lora("lora-ddp4"), &ddp), alone, "LoRA, DDP on 4 ranks");
  EXPECT_GT(ddp.buckets().bucket_count(), 1u);
  ZeroOptimizer zero(group_of(4));
  expect_same_losses(train(lora("lora-zero4"), &zero), alone, "LoRA, ZeRO-1 on 4 ranks");
}

// Every rank's slices, on every rank (what reading a checkpoint's shard files gives).
std::vector<train::StateSlice> gather_slices(const std::vector<train::StateSlice>& mine) {
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<train::StateSlice> all;
  for (int root = 0; root < size; ++root) {
    std::int64_t count = root == rank ? static_cast<std::int64_t>(mine.size()) : 0;
    MPI_Bcast(&count, 1, MPI_INT64_T, root, MPI_COMM_WORLD);
    for (std::int64_t i = 0; i < count; ++i) {
      train::StateSlice s = root == rank ? mine[i] : train::StateSlice{};
      std::int64_t header[3] = {static_cast<std::int64_t>(s.name.size()), static_cast<std::int64_t>(s.global_shape.size()),
                                s.data.defined() ? s.data.numel() : 0};
      MPI_Bcast(header, 3, MPI_INT64_T, root, MPI_COMM_WORLD);
      s.name.resize(static_cast<std::size_t>(header[0]));
      s.global_shape.resize(static_cast<std::size_t>(header[1]));
      if (root != rank) s.data = at::empty({header[2]});
      MPI_Bcast(s.name.data(), static_cast<int>(header[0]), MPI_CHAR, root, MPI_COMM_WORLD);
      MPI_Bcast(s.global_shape.data(), static_cast<int>(header[1]), MPI_INT64_T, root, MPI_COMM_WORLD);
      MPI_Bcast(&s.offset, 1, MPI_INT64_T, root, MPI_COMM_WORLD);
      MPI_Bcast(s.data.data_ptr<float>(), static_cast<int>(header[2]), MPI_FLOAT, root, MPI_COMM_WORLD);
      all.push_back(std::move(s));
    }
  }
  return all;
}

TEST_F(DataParallelTest, ZeroStateFrom4RanksResumesOn4And2And1) {
  config::Recipe r = recipe(4, "zero-capture");
  r.train.steps = 8;
  testing_support::CaptureAfter capture(3);
  std::vector<double> uninterrupted;
  {
    ZeroOptimizer zero(group_of(4));
    std::atomic<bool> stop{false};
    train::Trainer trainer(r, {zero.data_parallel_rank(), 4, 0}, &zero, &capture);
    uninterrupted = trainer.train(stop).losses;
  }
  testing_support::SliceStore store;
  store.add(gather_slices(capture.state.slices));
  const std::vector<double> expected(uninterrupted.begin() + 4, uninterrupted.end());

  const auto resume = [&](train::Parallelism* parallel, int ranks, const std::string& run) {
    config::Recipe resumed = recipe(ranks, run);
    resumed.train.steps = 8;
    testing_support::RestoreFrom restore(capture.state, store);
    std::atomic<bool> stop{false};
    train::Trainer trainer(resumed, {parallel ? parallel->data_parallel_rank() : 0, ranks, 0}, parallel, &restore);
    return trainer.train(stop).losses;
  };
  ZeroOptimizer zero4(group_of(4));
  expect_same_losses(resume(&zero4, 4, "zero-resume4"), expected, "ZeRO-1 on 4 resumed on 4");
  DataParallel ddp2(group_of(2), config::ParallelConfig{});
  expect_same_losses(resume(&ddp2, 2, "zero-resume2"), expected, "ZeRO-1 on 4 resumed as DDP on 2");
  expect_same_losses(resume(nullptr, 1, "zero-resume1"), expected, "ZeRO-1 on 4 resumed on 1");
}

// The same through checkpoint files: 4 ZeRO-1 ranks save encrypted checkpoints in the background
// (every shard written by its rank, committed by rank 0); the job "dies" after step 4's; then the
// world resumes from the files as 4 ZeRO-1 ranks (bit for bit), 2 DDP groups of 2, and 4 single
// processes. Resumed runs only read (checkpoint interval 0).
TEST_F(DataParallelTest, ZeroCheckpointFilesFrom4RanksResumeOn4And2And1) {
  const std::string checkpoints = shared_dir_ + "/zero-checkpoints";
  const std::string key_file = shared_dir_ + "/kek";
  if (world_rank_ == 0) checkpoint::generate_key_file(key_file, checkpoint::KeyFileOverwrite::kRefuse);
  MPI_Barrier(MPI_COMM_WORLD);
  const std::unique_ptr<checkpoint::KeyProvider> key = checkpoint::open_key_provider("file:" + key_file);
  const auto hooks_settings = [&](std::int64_t interval) {
    train::CheckpointSettings settings;
    settings.options.directory = checkpoints;
    settings.options.key = key.get();
    settings.options.keep = 0;
    settings.interval = interval;
    return settings;
  };
  config::Recipe r = recipe(4, "zero-files");
  r.train.steps = 8;
  std::vector<double> uninterrupted;
  {
    launch::MpiRankGroup group(MPI_COMM_WORLD);
    train::CheckpointHooks hooks(hooks_settings(4), group);
    ZeroOptimizer zero(group_of(4));
    std::atomic<bool> stop{false};
    train::Trainer trainer(r, {zero.data_parallel_rank(), 4, 0}, &zero, &hooks);
    uninterrupted = trainer.train(stop).losses;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank_ == 0) {
    const std::vector<checkpoint::CommittedCheckpoint> saved = checkpoint::list_checkpoints(checkpoints);
    ASSERT_EQ(saved.size(), 2u);
    EXPECT_EQ(saved[0].step, 4);
    checkpoint::remove_checkpoint(saved[1].path);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const std::vector<double> expected(uninterrupted.begin() + 4, uninterrupted.end());

  const auto resume = [&](train::Parallelism* parallel, int ranks, const std::string& run) {
    config::Recipe resumed = recipe(ranks, run);
    resumed.train.steps = 8;
    MPI_Comm comm;
    MPI_Comm_split(MPI_COMM_WORLD, world_rank_ / ranks, world_rank_, &comm);
    std::vector<double> losses;
    {
      launch::MpiRankGroup group(comm);
      train::CheckpointHooks hooks(hooks_settings(0), group);
      std::atomic<bool> stop{false};
      train::Trainer trainer(resumed, {parallel ? parallel->data_parallel_rank() : 0, ranks, 0}, parallel, &hooks);
      losses = trainer.train(stop).losses;
    }
    MPI_Comm_free(&comm);
    return losses;
  };
  ZeroOptimizer zero4(group_of(4));
  EXPECT_EQ(resume(&zero4, 4, "zero-files-resume4"), expected) << "ZeRO-1 on 4 resumed on 4 from files";
  DataParallel ddp2(group_of(2), config::ParallelConfig{});
  expect_same_losses(resume(&ddp2, 2, "zero-files-resume2"), expected, "ZeRO-1 on 4 resumed as DDP on 2 from files");
  expect_same_losses(resume(nullptr, 1, "zero-files-resume1"), expected, "ZeRO-1 on 4 resumed on 1 from files");
}

}  // namespace
}  // namespace albion::parallel
