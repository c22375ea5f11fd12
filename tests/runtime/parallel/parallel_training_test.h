// File: tests/runtime/parallel/parallel_training_test.h
// What the tests of the trainer's parallelisms under mpirun share: a small dataset rank 0 prepares
// and every rank reads, a world communicator to split groups from, a short CPU recipe, and the
// comparison of losses with one process's.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/keys/key_file.h"
#include "collectives/mpi_communicator.h"
#include "launch/mpi_rank_group.h"
#include "runtime/config/recipe.h"
#include "runtime/train/checkpointing.h"
#include "tests/support/small_dataset.h"
#include "tests/support/temp_dir.h"

namespace albion::testing_support {

class ParallelTrainingTest : public testing::Test {
 protected:
  static constexpr std::int64_t kSeqLen = 32;
  static constexpr std::int64_t kGlobalSequences = 8;  // per step, over all ranks
  static constexpr std::int64_t kSteps = 20;

  static void SetUpTestSuite() {
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &world_size_);
    // Rank 0 prepares the dataset; everyone uses its directory.
    std::string path;
    if (world_rank_ == 0) {
      dir_ = new TempDir();
      prepare_small_dataset(*dir_ / "data");
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

  // kSteps steps of `preset` on CPU over kGlobalSequences x kSeqLen tokens each, in a run
  // directory of this rank's own.
  static config::Recipe short_recipe(const std::string& preset, const std::string& run) {
    config::Recipe r;
    r.run.dir = shared_dir_ + "/" + run + "-rank" + std::to_string(world_rank_);
    r.run.device = "cpu";
    r.data.dataset = shared_dir_ + "/data";
    r.model.preset = preset;
    r.train.seq_len = kSeqLen;
    r.train.micro_batch = 2;
    r.train.global_batch_tokens = kSeqLen * kGlobalSequences;
    r.train.steps = kSteps;
    r.optim.warmup_steps = 3;
    r.eval.interval = 0;
    r.eval.sample_tokens = 0;
    r.log.interval = kSteps;
    r.log.tensorboard = false;
    return r;
  }

  // A key every rank opens, made by rank 0 on first use: for encrypted checkpoints.
  static std::unique_ptr<checkpoint::KeyProvider> shared_key() {
    const std::string key_file = shared_dir_ + "/kek";
    if (world_rank_ == 0 && !std::filesystem::exists(key_file)) {
      checkpoint::generate_key_file(key_file, checkpoint::KeyFileOverwrite::kRefuse);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    return checkpoint::open_key_provider("file:" + key_file);
  }

  // Encrypted checkpoints in `directory` every `interval` steps (0: resume only), all kept.
  static train::CheckpointSettings checkpoint_settings(const std::string& directory, checkpoint::KeyProvider* key,
                                                       std::int64_t interval) {
    train::CheckpointSettings settings;
    settings.options.directory = directory;
    settings.options.key = key;
    settings.options.keep = 0;
    settings.interval = interval;
    return settings;
  }

  // `body(group)` on independent jobs of `ranks` consecutive world ranks each (as jobs that resume
  // from the same checkpoint files), with this rank's job as a checkpoint rank group.
  template <typename Body>
  static auto in_jobs_of(int ranks, Body body) {
    MPI_Comm comm;
    MPI_Comm_split(MPI_COMM_WORLD, world_rank_ / ranks, world_rank_, &comm);
    auto result = [&] {
      launch::MpiRankGroup group(comm);
      return body(group);
    }();
    MPI_Comm_free(&comm);
    return result;
  }

  static void expect_same_losses(const std::vector<double>& actual, const std::vector<double>& expected,
                                 const std::string& what, double relative = 1e-5) {
    ASSERT_EQ(actual.size(), expected.size()) << what;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_LT(std::abs(actual[i] - expected[i]) / std::abs(expected[i]), relative)
          << what << ", step " << i << ": " << actual[i] << " vs " << expected[i];
    }
  }

  static inline int world_rank_ = 0;
  static inline int world_size_ = 1;
  static inline TempDir* dir_ = nullptr;
  static inline std::string shared_dir_;
  static inline std::shared_ptr<collectives::Communicator> world_;
};

}  // namespace albion::testing_support
