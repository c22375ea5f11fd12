// File: tests/runtime/parallel/data_parallel_test.cpp
// Under mpirun -np 4: data parallelism computes what one process computes. Each rank first trains
// alone (the reference: the whole global batch through gradient accumulation), then DDP trains on
// 1, 2 and 4 ranks (sub-communicators split from the world) and ZeRO-1 on 2 and 4, each over the
// same global batch, for 20 steps; every step's loss must match the reference to 1e-5 relative.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <memory>

#include "collectives/mpi_communicator.h"
#include "runtime/data/prepare.h"
#include "runtime/parallel/data_parallel.h"
#include "runtime/train/trainer.h"
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
      data::PrepareOptions o;
      o.inputs = {std::string(ALBION_SOURCE_DIR) + "/recipes/corpus/austen/persuasion.txt"};
      o.output = *dir_ / "data";
      o.tokenizer_spec = "byte";
      o.text_document_bytes = 20000;
      data::prepare_dataset(o);
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

}  // namespace
}  // namespace albion::parallel
