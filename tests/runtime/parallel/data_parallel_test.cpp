// File: tests/runtime/parallel/data_parallel_test.cpp
// Under mpirun -np 4: data parallelism computes what one process computes. Each rank first trains
// alone (the reference: the whole global batch through gradient accumulation), then DDP trains on
// 1, 2 and 4 ranks (sub-communicators split from the world) and ZeRO-1 on 2 and 4, each over the
// same global batch, for 20 steps; every step's loss must match the reference to 1e-5 relative.
// ZeRO-2 on 2 and 4, keeping only its shard of the gradients. LoRA fine-tuning and activation
// checkpointing likewise, over DDP, ZeRO-1 and ZeRO-2 on 4 ranks. Then
// resharding: a ZeRO-1 state captured on 4 ranks resumes on 4 (ZeRO-1), 2 (DDP) and 1 rank,
// from memory and from real encrypted checkpoint files written by all 4 ranks; ZeRO-2's state
// resumes on 1 rank and ZeRO-1's as ZeRO-2. The validation loss
// of 1, 2 and 4 ranks is the same.
#include <gtest/gtest.h>

#include <fstream>
#include <mpi.h>

#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <optional>

#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/keys/key_file.h"
#include "collectives/mpi_communicator.h"
#include "launch/mpi_rank_group.h"
#include "runtime/data/prepare.h"
#include "runtime/parallel/data_parallel.h"
#include "runtime/train/checkpointing.h"
#include "runtime/train/trainer.h"
#include "tests/runtime/parallel/all_ranks_slices.h"
#include "tests/runtime/parallel/parallel_training_test.h"
#include "tests/runtime/train/training_state_support.h"
#include "tests/support/chat_records.h"
#include "tests/support/hugging_face_directory.h"
#include "tests/support/small_dataset.h"
#include "tests/support/temp_dir.h"

namespace albion::parallel {
namespace {

class DataParallelTest : public testing_support::ParallelTrainingTest {
 protected:
  static config::Recipe recipe(int data_ranks, const std::string& run) {
    (void)data_ranks;  // the global batch is the same: accumulation 4 / data_ranks
    return short_recipe("tiny", run);
  }

  static train::TrainSummary train_summary(const config::Recipe& r, train::Parallelism* parallel) {
    std::atomic<bool> stop{false};
    const int rank = parallel ? parallel->data_parallel_rank() : 0;
    const int size = parallel ? parallel->data_parallel_size() : 1;
    train::Trainer trainer(r, {rank, size, 0}, parallel);
    return trainer.train(stop);
  }
  static std::vector<double> train(const config::Recipe& r, train::Parallelism* parallel) {
    return train_summary(r, parallel).losses;
  }

  // Ranks in groups of `group_size` consecutive world ranks.
  static std::shared_ptr<collectives::Communicator> group_of(int group_size) {
    return world_->split(world_rank_ / group_size, world_rank_, "data");
  }

  // Over the ranks of `parallel`, `updates` matrices orthogonalized in all, a share on each rank.
  static void expect_each_matrix_orthogonalized_once(DataParallelRanks& parallel, std::int64_t updates,
                                                     const std::string& what) {
    const std::int64_t here = parallel.orthogonalized_here();
    const at::Tensor mean = parallel.mean(at::full({}, static_cast<double>(here), at::kDouble));
    const std::int64_t everywhere = std::llround(mean.item<double>() * parallel.data_parallel_size());
    EXPECT_EQ(everywhere, updates) << what;
    EXPECT_GT(here, 0) << what;
    EXPECT_LT(here, everywhere) << what;
  }

  static const train::TrainSummary& reference_summary() {
    static const train::TrainSummary summary = [] {
      std::atomic<bool> stop{false};
      train::Trainer trainer(recipe(1, "alone"), {});
      return trainer.train(stop);
    }();
    return summary;
  }
  static const std::vector<double>& reference() { return reference_summary().losses; }

  // The losses of `resumed` (on `ranks` ranks, under `parallel` or alone) restored from `state`
  // and its slices in `store`.
  static std::vector<double> resumed_losses(const config::Recipe& resumed, const train::TrainingState& state,
                                            const testing_support::SliceStore& store, train::Parallelism* parallel,
                                            int ranks) {
    testing_support::RestoreFrom restore(state, store);
    std::atomic<bool> stop{false};
    train::Trainer trainer(resumed, {parallel ? parallel->data_parallel_rank() : 0, ranks, 0}, parallel, &restore);
    return trainer.train(stop).losses;
  }
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

// Chat data trains the answers only, so ranks and micro-batches hold different numbers of trained
// targets: DDP on 2 and 4 ranks still matches one process (Note [Every trained target weighs
// alike], runtime/train/trainer.cpp), where averaging each rank's mean would not.
TEST_F(DataParallelTest, DdpOnChatDataMatchesOneProcess) {
  const std::string chat_data = shared_dir_ + "/chat-data";
  if (world_rank_ == 0) {
    data::PrepareOptions o;
    o.inputs = {dir_->write("chat.jsonl", testing_support::varied_answer_records(300))};
    o.output = chat_data;
    o.tokenizer_spec = "byte";
    o.format = data::InputFormat::kChat;
    o.chat_template = "none";
    data::prepare_dataset(o);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  auto chat = [&](const std::string& run) {
    config::Recipe r = short_recipe("tiny", run);
    r.data.dataset = chat_data;
    r.data.packing = "documents";
    r.data.document_masking = true;
    return r;
  };
  const train::TrainSummary alone = train_summary(chat("chat-alone"), nullptr);
  EXPECT_LT(alone.text_tokens, kSteps * chat("").train.global_batch_tokens);  // padding is not text
  for (int ranks : {2, 4}) {
    DataParallel ddp(group_of(ranks), config::ParallelConfig{});
    const train::TrainSummary spread = train_summary(chat("chat-ddp" + std::to_string(ranks)), &ddp);
    const std::string what = "DDP on chat data, " + std::to_string(ranks) + " ranks";
    expect_same_losses(spread.losses, alone.losses, what);
    // The ranks' tokens of text, counted where the targets are, add up to one process's.
    EXPECT_EQ(spread.text_tokens, alone.text_tokens) << what;
  }
}

// eval.batches is shared by the data-parallel ranks, and the loss weighted by scored token: 4
// batches on 1, 2 or 4 ranks score the same windows, so the validation loss is the same.
TEST_F(DataParallelTest, ValidationLossIsTheSameOnAnyNumberOfRanks) {
  ASSERT_EQ(world_size_, 4) << "run under mpirun -np 4";
  const std::string dataset = shared_dir_ + "/data-with-val";
  // 7 questions (eval.choices): 4 ranks answer 1, 2, 2 and 2 of them.
  const std::string questions = shared_dir_ + "/questions.jsonl";
  if (world_rank_ == 0) {
    testing_support::prepare_small_dataset(dataset, 0.2);
    std::ofstream out(questions);
    for (int i = 0; i < 7; ++i) {
      out << R"({"context": "Anne Elliot )" << i << R"(", "choices": ["was", "had been", "sat"], "answer": )" << i % 3
          << "}\n";
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  auto validated = [&](int ranks, int batches) {
    config::Recipe r = recipe(ranks, "val" + std::to_string(ranks) + "-" + std::to_string(batches));
    r.data.dataset = dataset;
    r.train.steps = 4;
    r.optim.warmup_steps = 1;
    r.eval.interval = 4;
    r.eval.batches = batches;
    r.eval.choices = questions;
    DataParallel ddp(group_of(ranks), config::ParallelConfig{});
    std::atomic<bool> stop{false};
    train::Trainer trainer(r, {ddp.data_parallel_rank(), ranks, 0}, &ddp);
    return trainer.train(stop);
  };
  // 3 and 5 batches do not divide over 2 or 4 ranks: some ranks score one batch fewer (with 3 on 4
  // ranks, one scores none). The questions' answers too are one process's.
  for (int batches : {4, 3, 5}) {
    const train::TrainSummary one = validated(1, batches);
    ASSERT_TRUE(one.final_val_loss.has_value() && one.final_choices.has_value());
    EXPECT_EQ(one.final_choices->questions, 7);
    for (int ranks : {2, 4}) {
      const train::TrainSummary many = validated(ranks, batches);
      ASSERT_TRUE(many.final_val_loss.has_value() && many.final_choices.has_value()) << ranks;
      EXPECT_LT(std::abs(*many.final_val_loss - *one.final_val_loss), 1e-6 * *one.final_val_loss)
          << batches << " batches on " << ranks << " ranks: " << *many.final_val_loss << " against "
          << *one.final_val_loss;
      EXPECT_EQ(many.final_choices->questions, 7) << ranks << " ranks";
      EXPECT_EQ(many.final_choices->correct, one.final_choices->correct) << ranks << " ranks";
      EXPECT_EQ(many.final_choices->correct_norm, one.final_choices->correct_norm) << ranks << " ranks";
    }
  }
}

// Muon (optim.name = muon) orthogonalizes the gradients' mean, which DDP's all-reduce gives every
// rank: 2 and 4 ranks train as one process. Under ZeRO-1 and -2 each rank holds the momentum of its
// pieces of the matrices, some of them cut between ranks, and sees them whole for the update (Note
// [Muon on ZeRO's pieces]): the same losses and gradient norms, and half or a quarter of the state.
// The norms within 2e-4, not 1e-5: the reduced gradients' last bits differ with the order of the
// sums, and Newton-Schulz in bf16 rounds some of those differences up to bf16's (measured up to
// 7e-5 over 20 steps, under DDP as under ZeRO).
TEST_F(DataParallelTest, MuonUnderDdpAndZeroMatchesOneProcess) {
  config::Recipe r = recipe(1, "muon-alone");
  r.optim.name = "muon";
  const train::TrainSummary alone = train_summary(r, nullptr);
  constexpr double kNormTolerance = 2e-4;
  for (int ranks : {2, 4}) {
    const std::string what = "Muon under DDP on " + std::to_string(ranks) + " ranks";
    r.run.dir = shared_dir_ + "/muon-ddp" + std::to_string(ranks) + "-rank" + std::to_string(world_rank_);
    DataParallel ddp(group_of(ranks), config::ParallelConfig{});
    std::atomic<bool> stop{false};
    train::Trainer trainer(r, {ddp.data_parallel_rank(), ranks, 0}, &ddp);
    const train::TrainSummary summary = trainer.train(stop);
    expect_same_losses(summary.losses, alone.losses, what);
    expect_same_losses(summary.grad_norms, alone.grad_norms, what + ", gradient norm", kNormTolerance);
    // Each matrix was orthogonalized by one rank, and every rank took a share (Note [Muon's
    // matrices spread over DDP's ranks]).
    std::int64_t matrices = 0;
    for (const optim::OptimizedParameter& p : trainer.optimizer().parameters()) matrices += p.orthogonalized;
    expect_each_matrix_orthogonalized_once(ddp, matrices * static_cast<std::int64_t>(summary.losses.size()), what);
  }
  EXPECT_NE(alone.losses, reference()) << "Muon trained as AdamW does";

  for (int stage : {1, 2}) {
    for (int ranks : {2, 4}) {
      const std::string what = "Muon under ZeRO-" + std::to_string(stage) + " on " + std::to_string(ranks) + " ranks";
      r.run.dir = shared_dir_ + "/muon-zero" + std::to_string(stage) + "-" + std::to_string(ranks) + "-rank" +
                  std::to_string(world_rank_);
      ZeroOptimizer zero(group_of(ranks), nullptr, stage, /*bucket_bytes=*/50 << 10);
      std::atomic<bool> stop{false};
      train::Trainer trainer(r, {zero.data_parallel_rank(), ranks, 0}, &zero);
      const train::TrainSummary summary = trainer.train(stop);
      expect_same_losses(summary.losses, alone.losses, what);
      expect_same_losses(summary.grad_norms, alone.grad_norms, what + ", gradient norm", kNormTolerance);
      std::map<std::string, std::int64_t> sizes;
      std::int64_t trained = 0;
      std::int64_t matrices = 0;  // elements of the matrices Muon updates
      std::int64_t updates = 0;   // of those matrices, over the run
      std::int64_t largest = 0;   // elements of the largest
      for (const auto& [name, parameter] : trainer.model().named_parameters()) {
        sizes[name] = parameter.numel();
        trained += parameter.numel();
        if (!train::takes_muon(r, trainer.model(), name, parameter)) continue;
        matrices += parameter.numel();
        largest = std::max(largest, parameter.numel());
        updates += static_cast<std::int64_t>(summary.losses.size());
      }
      expect_each_matrix_orthogonalized_once(zero, updates, what);
      bool cut = false;  // a piece of a Muon matrix that is not the whole matrix
      for (const optim::OptimizedParameter& piece : zero.optimizer(trainer).parameters()) {
        if (!piece.orthogonalized) continue;
        EXPECT_FALSE(piece.exp_avg_sq.defined()) << what << ": " << piece.name;
        cut = cut || piece.parameter.numel() < sizes.at(piece.name);
      }
      EXPECT_TRUE(zero.any_rank(cut)) << what << ": no matrix was cut between ranks";
      // The matrices are gathered a window of buckets at a time: the largest window's buffers hold
      // at least the largest matrix, and less than all of them.
      EXPECT_GE(zero.muon_gather_bytes(), 4 * largest) << what;
      EXPECT_LT(zero.muon_gather_bytes(), 4 * matrices) << what;
      const std::int64_t state_alone = 4 * matrices + 8 * (trained - matrices);  // fp32: Muon's one moment, AdamW's two
      const std::int64_t state = zero.optimizer_state_bytes(trainer);
      EXPECT_LE(std::abs(state - state_alone / ranks), 8 * static_cast<std::int64_t>(zero.shard_ranges().size()))
          << what << ": " << state << " bytes of " << state_alone;
    }
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
  ZeroOptimizer zero2(group_of(4), nullptr, 2, 50 << 10);
  expect_same_losses(train(recomputing("recompute-zero2-4"), &zero2), reference(), "recomputing, ZeRO-2 on 4 ranks");
}

// ZeRO shards the AdamW moments over the ranks and reduce-scatters each gradient bucket as backward
// completes it: ZeRO-1 in a step's last micro-batch (2 ranks accumulate 2 a step), ZeRO-2 in
// every one. Either way no parameter holds a whole gradient after a step, a rank's shard is its
// range of every bucket, and the ranks' ranges differ by at most one element.
TEST_F(DataParallelTest, ZeroMatchesOneProcessAndShardsItsState) {
  for (int stage : {1, 2}) {
    for (int ranks : {2, 4}) {
      ZeroOptimizer zero(group_of(ranks), nullptr, stage, /*bucket_bytes=*/50 << 10);
      config::Recipe r = recipe(ranks, "zero" + std::to_string(stage) + "-" + std::to_string(ranks));
      std::atomic<bool> stop{false};
      train::Trainer trainer(r, {zero.data_parallel_rank(), ranks, 0}, &zero);
      const train::TrainSummary summary = trainer.train(stop);
      const std::string what = "ZeRO-" + std::to_string(stage) + " on " + std::to_string(ranks) + " ranks";
      expect_same_losses(summary.losses, reference(), what);
      // AdamW barely sees a gradient's scale; the norm does (a sum over ranks for their mean).
      expect_same_losses(summary.grad_norms, reference_summary().grad_norms, what + ", gradient norm");
      std::int64_t parameters = 0;
      for (const auto& p : trainer.optimizer().parameters()) {
        parameters += p.parameter.numel();
        EXPECT_FALSE(p.parameter.grad().defined()) << what << ": " << p.name << " kept its whole gradient";
      }
      const std::int64_t ranges = static_cast<std::int64_t>(zero.shard_ranges().size());
      EXPECT_GT(ranges, 1) << what;
      EXPECT_LE(std::abs(zero.gradient_bytes() - 4 * parameters / ranks), 4 * ranges)
          << what << ": " << zero.gradient_bytes();
      const std::int64_t state = zero.optimizer_state_bytes(trainer);
      EXPECT_LE(std::abs(state - 8 * parameters / ranks), 8 * ranges) << what << ": " << state << " bytes";
    }
  }
}

// LoRA: only the adapters are broadcast, bucketed, sharded and updated; over the same frozen base
// DDP, ZeRO-1 and ZeRO-2 still compute what one process computes.
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
  ZeroOptimizer zero2(group_of(4), nullptr, 2, 10 << 10);
  expect_same_losses(train(lora("lora-zero2-4"), &zero2), alone, "LoRA, ZeRO-2 on 4 ranks");
}

// The training state of ZeRO-1 on 4 ranks resumes on 4, as DDP on 2, alone, and as ZeRO-2 on 2;
// ZeRO-2's on 4 resumes alone. Both optimizers: AdamW's moments and Muon's momentum, which ZeRO
// holds in pieces of matrices.
TEST_F(DataParallelTest, ZeroStateFrom4RanksResumesOn4And2And1) {
  for (const std::string optimizer : {"adamw", "muon"}) {
    const auto named = [&](int ranks, const std::string& run) {
      config::Recipe r = recipe(ranks, run + "-" + optimizer);
      r.train.steps = 8;
      r.optim.name = optimizer;
      return r;
    };
    // Trains 8 steps on 4 ranks, capturing the state after step 3; returns the losses.
    const auto captured = [&](ZeroOptimizer& zero, testing_support::CaptureAfter& capture,
                              testing_support::SliceStore& store) {
      std::atomic<bool> stop{false};
      train::Trainer trainer(named(4, "zero-capture"), {zero.data_parallel_rank(), 4, 0}, &zero, &capture);
      const std::vector<double> losses = trainer.train(stop).losses;
      store.add(testing_support::all_ranks_slices(capture.state.slices));
      return losses;
    };
    testing_support::CaptureAfter capture(3);
    testing_support::SliceStore store;
    ZeroOptimizer zero(group_of(4));
    const std::vector<double> uninterrupted = captured(zero, capture, store);
    const std::vector<double> expected(uninterrupted.begin() + 4, uninterrupted.end());

    const auto resume = [&](train::Parallelism* parallel, int ranks, const std::string& run) {
      return resumed_losses(named(ranks, run), capture.state, store, parallel, ranks);
    };
    const std::string what = optimizer + ", ZeRO-1 on 4 resumed ";
    ZeroOptimizer zero4(group_of(4));
    expect_same_losses(resume(&zero4, 4, "zero-resume4"), expected, what + "on 4");
    DataParallel ddp2(group_of(2), config::ParallelConfig{});
    expect_same_losses(resume(&ddp2, 2, "zero-resume2"), expected, what + "as DDP on 2");
    expect_same_losses(resume(nullptr, 1, "zero-resume1"), expected, what + "on 1");
    // ZeRO-2's pieces are ranges of buckets, not of one flat shard: the state goes both ways.
    ZeroOptimizer zero2_2(group_of(2), nullptr, 2, 50 << 10);
    expect_same_losses(resume(&zero2_2, 2, "zero-resume-zero2"), expected, what + "as ZeRO-2 on 2");
    testing_support::CaptureAfter capture2(3);
    testing_support::SliceStore store2;
    ZeroOptimizer zero2_4(group_of(4), nullptr, 2, 50 << 10);
    captured(zero2_4, capture2, store2);
    expect_same_losses(resumed_losses(named(1, "zero2-resume1"), capture2.state, store2, nullptr, 1), expected,
                       optimizer + ", ZeRO-2 on 4 resumed on 1");
  }
}

// The same through checkpoint files: 4 ZeRO-1 ranks save encrypted checkpoints in the background
// (every shard written by its rank, committed by rank 0); the job "dies" after step 4's; then the
// world resumes from the files as 4 ZeRO-1 ranks (bit for bit), 2 DDP groups of 2, and 4 single
// processes. Resumed runs only read (checkpoint interval 0).
TEST_F(DataParallelTest, ZeroCheckpointFilesFrom4RanksResumeOn4And2And1) {
  const std::string checkpoints = shared_dir_ + "/zero-checkpoints";
  const std::unique_ptr<checkpoint::KeyProvider> key = shared_key();
  const auto hooks_settings = [&](std::int64_t interval) {
    return checkpoint_settings(checkpoints, key.get(), interval);
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
    return in_jobs_of(ranks, [&](launch::MpiRankGroup& group) {
      train::CheckpointHooks hooks(hooks_settings(0), group);
      std::atomic<bool> stop{false};
      train::Trainer trainer(resumed, {parallel ? parallel->data_parallel_rank() : 0, ranks, 0}, parallel, &hooks);
      return trainer.train(stop).losses;
    });
  };
  ZeroOptimizer zero4(group_of(4));
  EXPECT_EQ(resume(&zero4, 4, "zero-files-resume4"), expected) << "ZeRO-1 on 4 resumed on 4 from files";
  DataParallel ddp2(group_of(2), config::ParallelConfig{});
  expect_same_losses(resume(&ddp2, 2, "zero-files-resume2"), expected, "ZeRO-1 on 4 resumed as DDP on 2 from files");
  expect_same_losses(resume(nullptr, 1, "zero-files-resume1"), expected, "ZeRO-1 on 4 resumed on 1 from files");
}

}  // namespace
}  // namespace albion::parallel
