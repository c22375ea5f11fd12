// File: tests/runtime/parallel/tensor_parallel_test.cpp
// Under mpirun -np 4: tensor parallelism computes what one process computes.
//   - A Llama-family model (grouped key/value heads, Qwen's q/k/v biases) cut 2 and 4 ways as it is
//     built, vocabulary included, in fp64, with activation checkpointing and with tied embeddings,
//     with sequence parallelism and without: its values are the parts of the same seed's whole
//     model; the masked loss and the gathered logits to 1e-12, every parameter's gradient (each
//     rank's part of the whole model's; the norms' summed over the group) to 1e-10; gathered, the
//     parts are the whole model. A batch whose tokens do not divide is scored whole, and refused
//     for training. Loaded from a Hugging Face directory, each rank holds its part of the file's
//     tensors. The cut LM head's chunked cross-entropy equals the whole vocabulary's, in any chunks,
//     its last ids masked or not, through torch's ops or the kernels' path (padded, as on a GPU).
//   - The trainer on tiny-llama, tensor-parallel 2 ways alone and times data-parallel 2 ways (DDP
//     and ZeRO-1): 20 steps' losses (clipped at every step, so the global gradient norm must count
//     every part once) and the greedy text sample match one process; ZeRO-1 holds half of its
//     part's AdamW state per rank.
//   - A state captured on 2 x 2 ranks (DDP or ZeRO-1) resumes on 2 x 2 (bit for bit), on the
//     other of DDP and ZeRO-1, on 2-way tensor parallelism, on 4-way DDP and on 1 rank, from
//     memory and from encrypted checkpoint files; no rank saves more than 35% of it, and each rank
//     saves its own part of a column-cut tensor, transposed, into its own shard.
//   - Sequence parallelism's projections, which gather their input again in the backward pass,
//     equal at::linear of the gathered input (biases, frozen weights, bf16 autocast).
//   - LoRA on a cut model (DDP and ZeRO-1) matches one process, and its adapters resume on one process.
//   - GPT-2 the same way (q, k and v side by side in c_attn, each cut; c_proj's biases added once):
//     the parts of the whole model's values and gradients, loaded from a Hugging Face directory
//     too; trained tensor-parallel alone and with ZeRO-1 it matches one process, with LoRA too, and
//     a 2 x 2 state resumes on one process and tensor-parallel 2.
//   - A published model's vocabulary padded for the degree (masked padding): cut 2 and 4 ways, the
//     last rank holding padding only, it computes the whole padded model, which leaves the padding out.
//   - Degrees that do not divide the heads or the vocabulary are refused naming parallel.tensor.
//   - Muon on cut Llama and GPT-2 (each matrix put together over the tensor group), under DDP and
//     ZeRO-1 and -2, matches one process, and its 2 x 2 ZeRO-1 state resumes on one process.
//   - A stop asked on one rank stops every rank of a 2 x 2 job at the same step.
//   - GPT-2 on the byte tokenizer's 257 ids, which no degree divides, resumes from one process's
//     checkpoint files on 2 x tensor 2 (ZeRO-1), the vocabulary padded with a masked row, and from
//     those on one process again, continuing the uninterrupted run.
#include <gtest/gtest.h>
#include <mpi.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <numeric>
#include <set>
#include <tuple>

#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/keys/key_file.h"
#include "collectives/device_mesh.h"
#include "collectives/mpi_communicator.h"
#include "kernels/common/autocast_scope.h"
#include "launch/memory_plan.h"
#include "launch/mpi_rank_group.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/hf_import.h"
#include "runtime/models/tensor_parallel.h"
#include "runtime/parallel/data_parallel.h"
#include "runtime/train/checkpointing.h"
#include "runtime/train/trainer.h"
#include "tests/runtime/parallel/all_ranks_slices.h"
#include "tests/runtime/parallel/parallel_training_test.h"
#include "tests/runtime/train/training_state_support.h"
#include "tests/support/hugging_face_directory.h"

namespace albion::parallel {
namespace {

using collectives::Communicator;
using collectives::MeshDimension;

// Each rank's communicators for one layout of the 4 ranks.
struct Layout {
  std::shared_ptr<Communicator> data;
  std::shared_ptr<Communicator> tensor;
};

// The loss of one forward and backward, every parameter with its gradient, in named order, and the
// logits of an inference forward.
struct Gradients {
  double loss = 0;
  at::Tensor logits;
  std::vector<std::pair<std::string, at::Tensor>> parameters;
  std::vector<at::Tensor> gradients;
};

class TensorParallelTest : public testing_support::ParallelTrainingTest {
 protected:
  // The 4 ranks as a device mesh: data x `tensor`, tensor innermost.
  static Layout mesh(int tensor) {
    const collectives::DeviceMesh layout(world_size_, tensor, 1);
    auto split = [&](MeshDimension dimension, const char* name) -> std::shared_ptr<Communicator> {
      return world_->split(layout.color(dimension, world_rank_), layout.index(dimension, world_rank_), name);
    };
    Layout groups;
    groups.data = split(MeshDimension::kData, "data");
    groups.tensor = split(MeshDimension::kTensor, "tensor");
    return groups;
  }

  // Two independent jobs of 2 ranks each, tensor-parallel 2 ways.
  static Layout halves() {
    return {world_->split(world_rank_, 0, "data"), world_->split(world_rank_ / 2, world_rank_, "tensor")};
  }

  static config::Recipe recipe(const std::string& run, const std::string& preset = "tiny-llama") {
    config::Recipe r = short_recipe(preset, run);
    r.optim.grad_clip = 0.05;  // below every step's norm: each update is scaled by 0.05 / norm
    return r;
  }

  static train::TrainSummary train(const config::Recipe& r, train::Parallelism* parallel,
                                   train::TrainingHooks* hooks = nullptr) {
    std::atomic<bool> stop{false};
    train::Trainer trainer(r, {world_rank_, parallel ? world_size_ : 1, 0}, parallel, hooks);
    return trainer.train(stop);
  }

  // DDP (`zero` 0) or ZeRO-1 over `layout`'s data-parallel ranks, the model cut over its tensor group.
  static std::unique_ptr<train::Parallelism> parallelism(const Layout& layout, int zero) {
    config::ParallelConfig config;
    config.zero = zero;
    return make_data_parallelism(layout.data, config, layout.tensor);
  }

  // The losses of `r` cut 2 ways over `layout` (under parallelism(layout, zero)), in run directory
  // `run`; `inspect` then sees the recipe run, the trainer, its parallelism and the summary.
  using Inspect = std::function<void(const config::Recipe&, train::Trainer&, train::Parallelism&,
                                     const train::TrainSummary&)>;
  static std::vector<double> train_cut(config::Recipe r, const Layout& layout, int zero, const std::string& run,
                                       train::TrainingHooks* hooks, const Inspect& inspect) {
    r.run.dir = shared_dir_ + "/" + run + "-rank" + std::to_string(world_rank_);
    r.parallel.tensor = 2;
    r.parallel.zero = zero;
    const std::unique_ptr<train::Parallelism> parallel = parallelism(layout, zero);
    std::atomic<bool> stop{false};
    train::Trainer trainer(r, {world_rank_, world_size_, 0}, parallel.get(), hooks);
    const train::TrainSummary summary = trainer.train(stop);
    inspect(r, trainer, *parallel, summary);
    return summary.losses;
  }
};

// A model of `preset`'s architecture small enough for fp64: 2 layers of 64 features in 8 heads, 96 ids.
models::ModelConfig small_layout(const std::string& preset, std::int64_t recompute_every, bool tie_embeddings,
                                 bool sequence_parallel) {
  models::ModelConfig c = models::model_preset(preset);
  c.vocab_size = 96;
  c.context_length = 32;
  c.hidden_size = 64;
  c.layers = 2;
  c.heads = 8;
  c.recompute_every = recompute_every;
  c.tie_embeddings = tie_embeddings;
  c.sequence_parallel = sequence_parallel;
  return c;
}

// Qwen's layout: grouped key/value heads, q/k/v biases.
models::ModelConfig small_qwen_layout(std::int64_t recompute_every, bool tie_embeddings = false,
                                     bool sequence_parallel = true) {
  models::ModelConfig c = small_layout("tiny-llama", recompute_every, tie_embeddings, sequence_parallel);
  c.kv_heads = 4;
  c.intermediate_size = 96;
  c.attention_bias = true;
  return c;
}

models::ModelConfig small_gpt2_layout(std::int64_t recompute_every, bool tie_embeddings, bool sequence_parallel) {
  models::ModelConfig c = small_layout("tiny", recompute_every, tie_embeddings, sequence_parallel);
  c.kv_heads = 8;
  c.intermediate_size = 128;
  return c;
}

// `packed`: the rows hold documents of 10 and 14, and of 3 and 21 tokens, attended within
// (Note [Attention within documents]).
Gradients loss_and_gradients(const models::ModelConfig& config, const std::shared_ptr<Communicator>& tensor,
                             bool packed = false) {
  at::manual_seed(11);
  const std::shared_ptr<models::CausalLm> model = models::make_model(config, at::kCPU, tensor);
  model->to(at::kDouble);
  at::manual_seed(12);
  const at::Tensor ids = at::randint(config.vocab_in_use(), {2, 24});
  const at::Tensor targets = at::randint(config.vocab_in_use(), {2, 24});
  // Masked positions (one in three) and a target outside every rank's ids there are ignored.
  const at::Tensor mask = (at::arange(48) % 3 != 0).to(at::kLong).view({2, 24});
  const at::Tensor index = at::arange(24);
  const at::Tensor positions =
      packed ? at::stack({index - 10 * (index >= 10), index - 3 * (index >= 3)}) : at::Tensor();
  const at::Tensor loss = model->loss(ids, at::where(mask != 0, targets, -100), mask, positions);
  loss.backward();
  Gradients out;
  out.loss = loss.item<double>();
  {
    const at::NoGradGuard no_grad;
    out.logits = model->forward(ids, positions);
  }
  out.parameters = model->named_parameters();
  for (const auto& [name, parameter] : out.parameters) {
    at::Tensor gradient = parameter.grad();
    // What the trainer's data-parallel step sums over the group (one all-reduce there).
    if (tensor && models::tensor_parallel_partial_gradient(name, config.sequence_parallel)) {
      tensor->all_reduce(gradient, collectives::ReduceOp::kSum)->wait();
    }
    out.gradients.push_back(gradient);
  }
  return out;
}

double relative_difference(const at::Tensor& actual, const at::Tensor& expected) {
  return (actual - expected).abs().max().item<double>() / std::max(expected.abs().max().item<double>(), 1e-300);
}

// Cut over `tensor` (`degree` ranks), a model of `config` computes the whole model's loss, logits
// and gradients (each rank's part of them), its values are the parts of the whole model's, and
// `cut_count` of its parameters are cut.
void expect_parts_of_the_whole_model(const models::ModelConfig& config, const std::shared_ptr<Communicator>& tensor,
                                     bool packed, int cut_count, const std::string& what) {
  const Gradients whole = loss_and_gradients(config, nullptr, packed);
  const Gradients cut = loss_and_gradients(config, tensor, packed);
  EXPECT_LT(std::abs(cut.loss - whole.loss), 1e-12 * std::abs(whole.loss)) << what;
  const std::int64_t in_use = config.vocab_in_use();  // the padding's logits are -inf, checked below
  EXPECT_LT(relative_difference(cut.logits.narrow(-1, 0, in_use), whole.logits.narrow(-1, 0, in_use)), 1e-12) << what;
  ASSERT_EQ(cut.parameters.size(), whole.parameters.size()) << what;
  const std::int64_t index = tensor->rank(), degree = tensor->size();
  int cuts = 0;
  for (std::size_t i = 0; i < whole.parameters.size(); ++i) {
    const auto& [name, expected] = whole.parameters[i];
    const at::Tensor& actual = cut.parameters[i].second;
    ASSERT_EQ(cut.parameters[i].first, name);
    const models::TensorParallelCut split = models::tensor_parallel_split(name);
    auto part = [&](const at::Tensor& t) {
      return split.cut() ? models::tensor_parallel_part(t, split.dim, index, degree, split.groups) : t;
    };
    EXPECT_TRUE(at::equal(actual, part(expected))) << what << ": " << name;
    EXPECT_LT(relative_difference(cut.gradients[i], part(whole.gradients[i])), 1e-10) << what << ": " << name;
    if (!split.cut()) continue;
    ++cuts;
    EXPECT_TRUE(at::equal(models::gather_tensor_parallel(actual.detach(), split.dim, *tensor, split.groups), expected))
        << what << ": " << name;
  }
  EXPECT_EQ(cuts, cut_count) << what;
}

std::string description(int degree, int every, bool tie, bool sequence, bool packed) {
  return "cut " + std::to_string(degree) + " ways, recompute every " + std::to_string(every) +
         (tie ? ", tied embeddings" : "") + (sequence ? ", sequence-parallel" : "") +
         (packed ? ", packed documents" : "");
}

TEST_F(TensorParallelTest, CutModelGivesTheWholeModelsLossAndGradients) {
  ASSERT_EQ(world_size_, 4) << "run under mpirun -np 4";
  for (int degree : {2, 4}) {
    const Layout layout = mesh(degree);
    for (auto [every, tie, sequence, packed] :
         {std::tuple{0, false, true, false}, std::tuple{1, false, true, false}, std::tuple{0, true, true, false},
          std::tuple{0, false, false, false}, std::tuple{1, true, false, false}, std::tuple{0, false, true, true},
          std::tuple{1, true, false, true}}) {
      const models::ModelConfig config = small_qwen_layout(every, tie, sequence);
      // Per layer: q, k, v, o, gate, up and down weights, and the q, k and v biases; the embedding
      // and the LM head unless it is the embedding.
      expect_parts_of_the_whole_model(config, layout.tensor, packed, 10 * config.layers + (tie ? 1 : 2),
                                      description(degree, every, tie, sequence, packed));
    }
  }
}

TEST_F(TensorParallelTest, CutGpt2GivesTheWholeModelsLossAndGradients) {
  ASSERT_EQ(world_size_, 4) << "run under mpirun -np 4";
  for (int degree : {2, 4}) {
    const Layout layout = mesh(degree);
    for (auto [every, tie, sequence, packed] :
         {std::tuple{0, true, true, false}, std::tuple{1, false, true, false}, std::tuple{0, true, false, false},
          std::tuple{1, true, false, true}, std::tuple{0, false, true, true}}) {
      const models::ModelConfig config = small_gpt2_layout(every, tie, sequence);
      // Per layer: c_attn's weight and bias, c_fc's, and the two c_proj weights; wte, and lm_head
      // unless it is wte.
      expect_parts_of_the_whole_model(config, layout.tensor, packed, 6 * config.layers + (tie ? 1 : 2),
                                      "GPT-2 " + description(degree, every, tie, sequence, packed));
    }
  }
}

// A published model's vocabulary padded so that the degree divides it (Note [Masked vocabulary
// padding]): 70 ids in 96 rows, so cut 4 ways the last rank holds padding only. Cut, the model
// still computes the whole padded model's loss, logits and gradients; and that model leaves the
// padding out: its logits are -inf and its rows' gradients 0 (models_test holds the whole padded
// model to the published one).
TEST_F(TensorParallelTest, CutModelsLeaveMaskedVocabularyPaddingOut) {
  ASSERT_EQ(world_size_, 4) << "run under mpirun -np 4";
  for (int degree : {2, 4}) {
    const Layout layout = mesh(degree);
    for (bool gpt2 : {true, false}) {
      models::ModelConfig config = gpt2 ? small_gpt2_layout(0, true, true) : small_qwen_layout(0);
      config.vocab_padding = 26;
      const std::string what = str_cat(gpt2 ? "GPT-2 " : "Qwen ", description(degree, 0, gpt2, true, false));
      const int cuts = gpt2 ? 6 * static_cast<int>(config.layers) + 1 : 10 * static_cast<int>(config.layers) + 2;
      expect_parts_of_the_whole_model(config, layout.tensor, false, cuts, what);
      const Gradients whole = loss_and_gradients(config, nullptr);
      EXPECT_TRUE(whole.logits.narrow(-1, 70, 26).isneginf().all().item<bool>()) << what;
      int padded = 0;
      for (std::size_t i = 0; i < whole.parameters.size(); ++i) {
        const std::string& name = whole.parameters[i].first;
        const bool vocabulary_rows =
            name.ends_with("wte.weight") || name.ends_with("embed_tokens.weight") || name == "lm_head.weight";
        if (!vocabulary_rows) continue;
        ++padded;
        EXPECT_TRUE(whole.gradients[i].narrow(0, 70, 26).eq(0).all().item<bool>()) << what << ": " << name;
        EXPECT_GT(whole.gradients[i].narrow(0, 0, 70).abs().max().item<double>(), 0) << what << ": " << name;
      }
      EXPECT_EQ(padded, gpt2 ? 1 : 2) << what;
    }
  }
}

// The LM head cut by vocabulary, in chunks of rows (one row, 5 with a tail, all at once), its last
// ids masked or not, through torch's ops or the kernels' path (as on a GPU: each rank's rows padded
// for the products, the softmax in kernels::softmax_logsumexp and softmax_gradient_, here their
// CPU references): the loss and the gradients of the eager cross-entropy over the ids in use,
// ignored rows included (the masked rows' gradient 0).
TEST_F(TensorParallelTest, VocabParallelCrossEntropyInChunksMatchesTheWholeVocabularys) {
  ASSERT_EQ(world_size_, 4) << "run under mpirun -np 4";
  at::manual_seed(21);
  const at::Tensor hidden = at::randn({23, 16}, at::kDouble);
  const at::Tensor weight = at::randn({40, 16}, at::kDouble);
  for (const std::int64_t in_use : {40, 34}) {
    const at::Tensor targets = at::where(at::arange(23) % 4 == 0, -100, at::randint(in_use, {23}));
    const at::Tensor whole_hidden = hidden.clone().requires_grad_();
    const at::Tensor whole_weight = weight.clone().requires_grad_();
    const at::Tensor expected = at::cross_entropy_loss(at::linear(whole_hidden, whole_weight.narrow(0, 0, in_use)),
                                                       targets, {}, at::Reduction::Sum, -100);
    expected.backward();
    for (int degree : {2, 4}) {
      const Layout layout = mesh(degree);
      const int index = layout.tensor->rank();
      for (const auto& [chunk_rows, on_kernels] : {std::pair<std::int64_t, bool>{1, false}, {5, false}, {0, false},
                                                {1, true}, {5, true}, {0, true}}) {
        const std::string what =
            str_cat(degree, " ways, ", in_use, " ids in use, chunks of ", chunk_rows, on_kernels ? ", kernels" : "");
        const at::Tensor part_hidden = hidden.clone().requires_grad_();
        const at::Tensor part_weight =
            models::tensor_parallel_part(weight, 0, index, degree).clone().requires_grad_();
        const at::Tensor loss = models::vocab_parallel_linear_cross_entropy_sum(
            part_hidden, part_weight, targets, -100, *layout.tensor, chunk_rows, in_use, on_kernels);
        loss.backward();
        EXPECT_LT(std::abs(loss.item<double>() - expected.item<double>()), 1e-12 * expected.item<double>()) << what;
        at::Tensor grad_hidden = part_hidden.grad().clone();  // this rank's columns' share
        layout.tensor->all_reduce(grad_hidden, collectives::ReduceOp::kSum)->wait();
        EXPECT_LT(relative_difference(grad_hidden, whole_hidden.grad()), 1e-12) << what;
        EXPECT_LT(relative_difference(part_weight.grad(),
                                      models::tensor_parallel_part(whole_weight.grad(), 0, index, degree)), 1e-12)
            << what;
      }
    }
  }
}

// Sequence parallelism's projections keep only the rank's tokens of their input and gather it again
// in the backward pass: the products and every gradient equal those of the gathered input through
// at::linear, with and without biases, for frozen weights (no gradient), and under bf16 autocast.
TEST_F(TensorParallelTest, GatheredProductsMatchLinearOfTheGatheredInput) {
  ASSERT_EQ(world_size_, 4) << "run under mpirun -np 4";
  for (int degree : {2, 4}) {
    const Layout layout = mesh(degree);
    for (const bool autocast : {false, true}) {
      const std::string what = std::to_string(degree) + " ways" + (autocast ? ", bf16 autocast" : ", fp64");
      const at::ScalarType dtype = autocast ? at::kFloat : at::kDouble;
      at::manual_seed(31 + layout.tensor->rank());  // each rank its own tokens
      const at::Tensor part = at::randn({6, 16}, dtype);
      at::manual_seed(32);  // the same weights and output gradients on every rank
      const std::vector<at::Tensor> weights = {at::randn({8, 16}, dtype), at::randn({4, 16}, dtype),
                                               at::randn({5, 16}, dtype)};
      const std::vector<at::Tensor> biases = {at::randn({8}, dtype), at::Tensor(), at::randn({5}, dtype)};
      std::vector<at::Tensor> output_grads;
      for (const at::Tensor& weight : weights) output_grads.push_back(at::randn({6 * degree, weight.size(0)}, dtype));
      // Runs one way with fresh leaves; weight 1 is frozen.
      struct Run {
        std::vector<at::Tensor> outputs, leaves;
      };
      auto run = [&](bool gathered_again) {
        Run r;
        for (const at::Tensor& t : {part, weights[0], weights[1], weights[2], biases[0], biases[2]}) {
          r.leaves.push_back(t.clone().requires_grad_(r.leaves.size() != 2));
        }
        const std::vector<at::Tensor> w = {r.leaves[1], r.leaves[2], r.leaves[3]};
        const std::vector<at::Tensor> b = {r.leaves[4], at::Tensor(), r.leaves[5]};
        const kernels::Bf16AutocastScope scope(at::kCPU, autocast);
        if (gathered_again) {
          r.outputs = models::gathered_products(r.leaves[0], w, b, layout.tensor);
        } else {
          const at::Tensor whole = models::gather_tokens(r.leaves[0], layout.tensor);
          for (std::size_t i = 0; i < w.size(); ++i) {
            r.outputs.push_back(b[i].defined() ? at::linear(whole, w[i], b[i]) : at::linear(whole, w[i]));
          }
        }
        at::Tensor loss = at::zeros({}, dtype);
        for (std::size_t i = 0; i < w.size(); ++i) loss = loss + (r.outputs[i].to(dtype) * output_grads[i]).sum();
        loss.backward();
        return r;
      };
      const Run expected = run(false), actual = run(true);
      // The input is cast before the gather instead of after: the same products, bit for bit.
      for (std::size_t i = 0; i < weights.size(); ++i) {
        EXPECT_EQ(actual.outputs[i].scalar_type(), expected.outputs[i].scalar_type()) << what;
        EXPECT_TRUE(at::equal(actual.outputs[i], expected.outputs[i])) << what << ", product " << i;
      }
      const double tolerance = autocast ? 1e-2 : 1e-12;
      for (std::size_t i = 0; i < expected.leaves.size(); ++i) {
        ASSERT_EQ(actual.leaves[i].grad().defined(), expected.leaves[i].grad().defined()) << what << ", leaf " << i;
        if (!expected.leaves[i].grad().defined()) continue;
        EXPECT_EQ(actual.leaves[i].grad().scalar_type(), dtype) << what << ", leaf " << i;
        EXPECT_LT(relative_difference(actual.leaves[i].grad(), expected.leaves[i].grad()), tolerance)
            << what << ", gradient of leaf " << i;
      }
    }
  }
}

// Sequence parallelism cuts B x T tokens; a prompt or a last window that does not divide is scored
// whole, and training on one is refused rather than summing whole norm gradients n times.
TEST_F(TensorParallelTest, SequenceParallelKeepsABatchThatDoesNotDivideWholeOnlyWithoutGradients) {
  ASSERT_EQ(world_size_, 4) << "run under mpirun -np 4";
  const Layout layout = mesh(4);
  const models::ModelConfig config = small_qwen_layout(1);
  at::manual_seed(11);
  const std::shared_ptr<models::CausalLm> whole = models::make_model(config, at::kCPU);
  at::manual_seed(11);
  const std::shared_ptr<models::CausalLm> cut = models::make_model(config, at::kCPU, layout.tensor);
  at::manual_seed(13);
  const at::Tensor ids = at::randint(config.vocab_size, {1, 23});
  {
    const at::NoGradGuard no_grad;
    EXPECT_LT(relative_difference(cut->forward(ids), whole->forward(ids)), 1e-5);
  }
  try {
    cut->loss(ids, ids);
    ADD_FAILURE() << "a loss with gradients over 23 tokens on 4 sequence-parallel ranks was computed";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'parallel.sequence'"), std::string::npos) << e.what();
  }
}

// model.init under tensor parallelism: each rank copies its part of the whole tensors in the files.
TEST_F(TensorParallelTest, EachRankLoadsItsPartOfAHuggingFaceModel) {
  const Layout layout = mesh(2);
  for (const models::ModelConfig& config : {small_qwen_layout(0), small_gpt2_layout(0, true, true)}) {
    const std::string architecture = models::architecture_name(config.architecture);
    const std::string directory = shared_dir_ + "/hf-whole-" + architecture;
    at::manual_seed(21);
    const std::shared_ptr<models::CausalLm> whole = models::make_model(config);  // the same on every rank
    if (world_rank_ == 0) testing_support::write_hugging_face_directory(*whole, directory);
    MPI_Barrier(MPI_COMM_WORLD);
    at::manual_seed(22);  // other values, all overwritten by the load
    const std::shared_ptr<models::CausalLm> cut = models::make_model(config, at::kCPU, layout.tensor);
    models::load_hugging_face_weights(*cut, directory, nullptr);
    const auto expected = whole->named_parameters();
    const auto actual = cut->named_parameters();
    ASSERT_EQ(actual.size(), expected.size()) << architecture;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      const models::TensorParallelCut split = models::tensor_parallel_split(expected[i].first);
      const at::Tensor& whole_tensor = expected[i].second;
      const at::Tensor part =
          split.cut() ? models::tensor_parallel_part(whole_tensor, split.dim, layout.tensor->rank(), 2, split.groups)
                      : whole_tensor;
      EXPECT_TRUE(at::equal(actual[i].second, part)) << expected[i].first;
    }
  }
}

TEST_F(TensorParallelTest, ModelsThatCannotBeCutAreRefusedNamingTheRecipeKey) {
  auto message = [](const models::ModelConfig& config, std::int64_t degree) {
    try {
      models::check_tensor_parallel_degree(config, degree);
    } catch (const UsageError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  };
  // GPT-2's published vocabulary is odd; a recipe pads it (model.vocab_size = 50304).
  const std::string gpt2 = message(models::model_preset("gpt2"), 2);
  EXPECT_NE(gpt2.find("'parallel.tensor' = 2 does not divide the model's 50257 vocabulary entries"),
            std::string::npos)
      << gpt2;
  models::ModelConfig padded_gpt2 = models::model_preset("gpt2");
  padded_gpt2.vocab_size = 50304;
  EXPECT_EQ(message(padded_gpt2, 4), "no error");
  EXPECT_NE(message(padded_gpt2, 8).find("does not divide the model's 12 attention heads"), std::string::npos);
  const std::string kv = message(models::model_preset("tiny-llama"), 4);
  EXPECT_NE(kv.find("does not divide the model's 2 key/value heads"), std::string::npos) << kv;
  models::ModelConfig odd_vocabulary = small_qwen_layout(0);
  odd_vocabulary.vocab_size = 97;
  const std::string vocabulary = message(odd_vocabulary, 2);
  EXPECT_NE(vocabulary.find("does not divide the model's 97 vocabulary entries"), std::string::npos) << vocabulary;
  EXPECT_EQ(message(models::model_preset("llama-3.1-8b"), 8), "no error");
  // The trainer refuses the same before any step.
  const Layout layout = mesh(4);
  DataParallel parallel(layout.data, config::ParallelConfig{}, layout.tensor);
  EXPECT_THROW(train(recipe("refused"), &parallel), UsageError);
}

TEST_F(TensorParallelTest, TrainerOnTensorParallelRanksMatchesOneProcess) {
  // Multiple-choice questions answered at the last step (eval.choices): the ranks of a tensor group
  // answer the same ones, their forward passes lined up, and the tally is one process's.
  const std::string questions = shared_dir_ + "/tp-questions.jsonl";
  if (world_rank_ == 0) {
    std::ofstream out(questions);
    for (int i = 0; i < 7; ++i) {
      out << R"({"context": "Anne Elliot )" << i << R"(", "choices": ["was", "had been", "sat"], "answer": )" << i % 3
          << "}\n";
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  config::Recipe alone = recipe("alone");
  alone.eval.sample_tokens = 24;
  alone.eval.top_k = 0;  // greedy: the same text, if the logits are the same
  alone.eval.interval = kSteps;
  alone.eval.choices = questions;
  const train::TrainSummary reference = train(alone, nullptr);
  ASSERT_EQ(reference.losses.size(), static_cast<std::size_t>(kSteps));
  ASSERT_FALSE(reference.final_sample.empty());
  ASSERT_TRUE(reference.final_choices.has_value());

  const auto tensor_parallel = [&](const Layout& layout, int zero, const std::string& run) {
    config::Recipe r = alone;
    r.run.dir = shared_dir_ + "/" + run + "-rank" + std::to_string(world_rank_);
    r.parallel.tensor = 2;
    r.parallel.zero = zero;
    config::ParallelConfig config;
    config.bucket_mb = 0.05;  // several buckets, overlapped with a backward that runs collectives
    config.zero = zero;
    const std::unique_ptr<train::Parallelism> parallel = make_data_parallelism(layout.data, config, layout.tensor);
    std::atomic<bool> stop{false};
    train::Trainer trainer(r, {world_rank_, world_size_, 0}, parallel.get());
    const train::TrainSummary summary = trainer.train(stop);
    EXPECT_EQ(summary.final_sample, reference.final_sample) << run;
    EXPECT_TRUE(summary.final_choices && summary.final_choices->questions == 7 &&
                summary.final_choices->correct == reference.final_choices->correct &&
                summary.final_choices->correct_norm == reference.final_choices->correct_norm)
        << run;
    // AdamW moments, 8 bytes per parameter of this rank's part, split over 2 data-parallel ranks
    // under ZeRO-1; what `albion launch` plans for a rank is what the rank holds.
    std::int64_t part = 0;
    for (const auto& p : trainer.optimizer().parameters()) part += p.parameter.numel();
    const std::int64_t state = parallel->optimizer_state_bytes(trainer);
    const std::int64_t slack = 8 * 64;  // ZeRO: an element per bucket
    if (zero >= 1) {
      EXPECT_LE(std::abs(state - 8 * part / 2), slack) << state << " bytes on one of 2 x 2 ranks";
    }
    const int ranks = layout.data->size() * layout.tensor->size();
    const std::optional<launch::RankMemory> plan = launch::plan_rank_memory(r, ranks);
    EXPECT_TRUE(plan.has_value() && plan->parameters == part) << run;
    EXPECT_TRUE(plan.has_value() && std::abs(plan->optimizer_bytes - state) <= slack) << run << ": " << state;
    return summary.losses;
  };
  expect_same_losses(tensor_parallel(halves(), 0, "tp2"), reference.losses, "tensor-parallel 2");
  expect_same_losses(tensor_parallel(mesh(2), 0, "dp2-tp2"), reference.losses, "data 2 x tensor 2");
  expect_same_losses(tensor_parallel(mesh(2), 1, "zero2-tp2"), reference.losses, "ZeRO-1 2 x tensor 2");
  // ZeRO-2 sums the norms' partial gradients (sequence parallelism) over the tensor group on its shard.
  expect_same_losses(tensor_parallel(mesh(2), 2, "zero-stage2-tp2"), reference.losses, "ZeRO-2 2 x tensor 2");
}

// GPT-2 on the trainer: tensor-parallel 2 alone and 2 x 2 under ZeRO-1 (c_attn's moments strided
// over the tensor group, in pieces over the data group) match one process, greedy sample included,
// and each rank holds the parameters `albion launch` plans for it;
// a 2 x 2 state resumes on one process and on tensor-parallel 2. model.vocab_size pads the byte
// tokenizer's 257 ids to 320, which 2 ranks can cut.
TEST_F(TensorParallelTest, Gpt2TrainsTensorParallelAsOneProcessAndResumesOnOthers) {
  config::Recipe alone = recipe("gpt2-alone", "tiny");
  alone.model.vocab_size = 320;
  alone.train.steps = 8;
  alone.eval.sample_tokens = 24;
  alone.eval.top_k = 0;
  const train::TrainSummary reference = train(alone, nullptr);
  ASSERT_EQ(reference.losses.size(), 8u);
  const auto cut = [&](const Layout& layout, int zero, const std::string& run, train::TrainingHooks* hooks) {
    return train_cut(alone, layout, zero, run, hooks,
                     [&](const config::Recipe& r, train::Trainer& trainer, train::Parallelism&,
                         const train::TrainSummary& summary) {
                       EXPECT_EQ(summary.final_sample, reference.final_sample) << run;
                       // What `albion launch` plans for a rank is the part it holds.
                       std::int64_t part = 0;
                       for (const auto& p : trainer.optimizer().parameters()) part += p.parameter.numel();
                       const std::optional<launch::RankMemory> plan =
                           launch::plan_rank_memory(r, layout.data->size() * layout.tensor->size());
                       EXPECT_TRUE(plan.has_value() && plan->parameters == part) << run << ": " << part;
                     });
  };
  expect_same_losses(cut(halves(), 0, "gpt2-tp2", nullptr), reference.losses, "GPT-2 tensor-parallel 2");
  testing_support::CaptureAfter capture(3);
  expect_same_losses(cut(mesh(2), 1, "gpt2-zero-2x2", &capture), reference.losses, "GPT-2 ZeRO-1 2 x tensor 2");

  testing_support::SliceStore store;
  store.add(testing_support::all_ranks_slices(capture.state.slices));
  const std::vector<double> expected(reference.losses.begin() + 4, reference.losses.end());
  const auto resume = [&](train::Parallelism* parallel, const std::string& run) {
    config::Recipe resumed = alone;
    resumed.run.dir = shared_dir_ + "/" + run + "-rank" + std::to_string(world_rank_);
    resumed.eval.sample_tokens = 0;
    testing_support::RestoreFrom restore(capture.state, store);
    return train(resumed, parallel, &restore).losses;
  };
  expect_same_losses(resume(parallelism(halves(), 0).get(), "gpt2-resume-tp2"), expected,
                     "GPT-2 2 x 2 resumed tensor-parallel 2");
  expect_same_losses(resume(nullptr, "gpt2-resume-1"), expected, "GPT-2 2 x 2 resumed on 1");
}

// Muon on cut models: each rank's part of a matrix is put together over the tensor group and
// orthogonalized whole on one of its ranks (GPT-2's c_attn in its q, k and v blocks), under DDP,
// ZeRO-1 and ZeRO-2.
// Llama and GPT-2 train as one process, and a 2 x 2 ZeRO-1 state resumes on one process.
TEST_F(TensorParallelTest, MuonOnCutModelsMatchesOneProcessAndResumesOnOne) {
  for (const std::string preset : {"tiny-llama", "tiny"}) {
    config::Recipe alone = recipe("muon-alone-" + preset, preset);
    alone.model.vocab_size = 320;  // the byte tokenizer's 257 ids padded, so that 2 ranks can cut them
    alone.train.steps = 8;
    alone.optim.name = "muon";
    const train::TrainSummary reference = train(alone, nullptr);
    const auto cut = [&](const Layout& layout, int zero, const std::string& run, train::TrainingHooks* hooks) {
      return train_cut(alone, layout, zero, run + "-" + preset, hooks,
                       [&](const config::Recipe&, train::Trainer& trainer, train::Parallelism& parallel,
                           const train::TrainSummary& summary) {
                         // Each matrix orthogonalized once a step in the job, not once on each rank of
                         // its tensor group (Note [Muon's matrices spread over DDP's ranks]).
                         std::int64_t matrices = 0;
                         for (const auto& p : trainer.optimizer().parameters()) matrices += p.orthogonalized;
                         const std::int64_t here = dynamic_cast<DataParallelRanks&>(parallel).orthogonalized_here();
                         const at::Tensor job = at::full({1}, static_cast<double>(here), at::kDouble);
                         layout.tensor->all_reduce(job, collectives::ReduceOp::kSum)->wait();
                         layout.data->all_reduce(job, collectives::ReduceOp::kSum)->wait();
                         const std::int64_t everywhere = std::llround(job.item<double>());
                         EXPECT_EQ(everywhere, matrices * static_cast<std::int64_t>(summary.losses.size())) << run;
                         EXPECT_GT(here, 0) << run;
                         EXPECT_LT(here, everywhere) << run;
                       });
    };
    const std::string what = preset + ", Muon ";
    expect_same_losses(cut(halves(), 0, "muon-tp2", nullptr), reference.losses, what + "tensor-parallel 2");
    expect_same_losses(cut(mesh(2), 0, "muon-dp2-tp2", nullptr), reference.losses, what + "data 2 x tensor 2");
    testing_support::CaptureAfter capture(3);
    expect_same_losses(cut(mesh(2), 1, "muon-zero1-tp2", &capture), reference.losses, what + "ZeRO-1 2 x tensor 2");
    expect_same_losses(cut(mesh(2), 2, "muon-zero2-tp2", nullptr), reference.losses, what + "ZeRO-2 2 x tensor 2");

    testing_support::SliceStore store;
    store.add(testing_support::all_ranks_slices(capture.state.slices));
    config::Recipe resumed = alone;
    resumed.run.dir = shared_dir_ + "/muon-resume1-" + preset + "-rank" + std::to_string(world_rank_);
    testing_support::RestoreFrom restore(capture.state, store);
    expect_same_losses(train(resumed, nullptr, &restore).losses,
                       std::vector<double>(reference.losses.begin() + 4, reference.losses.end()),
                       what + "ZeRO-1 2 x tensor 2 resumed on 1");
  }
}

// A stop asked on one rank (a scheduler's SIGTERM reaches ranks at different times) is agreed by
// every rank of the job, not only by that rank's data-parallel peers: a tensor-parallel peer that
// went on would wait in its next collective for ranks that stopped.
TEST_F(TensorParallelTest, AStopAskedOnOneRankStopsEveryRankAtTheSameStep) {
  // halves() is two jobs: ranks 0 and 1 are not in rank 3's.
  const std::pair<Layout, bool> layouts[] = {{mesh(2), true}, {halves(), world_rank_ >= 2}, {mesh(4), true}};
  for (const auto& [layout, asked] : layouts) {
    DataParallel parallel(layout.data, config::ParallelConfig{}, layout.tensor);
    EXPECT_EQ(parallel.any_rank(world_rank_ == 3), asked) << "rank " << world_rank_ << " of " << layout.tensor->size();
    EXPECT_FALSE(parallel.any_rank(false)) << "rank " << world_rank_;
  }

  // Rank 3 is asked to stop after step 4 of 20 (2 x 2: its data-parallel peer is rank 1, its
  // tensor-parallel peer rank 2).
  class StopOnRank3After final : public train::TrainingHooks {
   public:
    explicit StopOnRank3After(std::atomic<bool>& stop) : stop_(stop) {}
    void after_step(train::Trainer&, std::int64_t step) override {
      if (step == 4 && world_rank_ == 3) stop_ = true;
    }

   private:
    std::atomic<bool>& stop_;
  };
  config::Recipe r = recipe("stop-one-rank");
  r.parallel.tensor = 2;
  std::atomic<bool> stop{false};
  StopOnRank3After hooks(stop);
  const std::unique_ptr<train::Parallelism> parallel = parallelism(mesh(2), 0);
  train::Trainer trainer(r, {world_rank_, world_size_, 0}, parallel.get(), &hooks);
  const train::TrainSummary summary = trainer.train(stop);
  EXPECT_TRUE(summary.stopped_early) << "rank " << world_rank_;
  EXPECT_EQ(summary.steps_done, 5) << "rank " << world_rank_;
}

// ZeRO-1 under tensor parallelism holds a piece of each cut parameter's moments: the data-parallel
// ranks' pieces are summed into the part, which its rank saves, as DDP's are. A column cut's part
// is saved transposed (its ranges of the transposed whole), never gathered.
TEST_F(TensorParallelTest, StateFrom2x2ResumesOn2x2AndTensor2AndData4And1) {
  for (const int captured_zero : {0, 1}) {
    const std::string kind = captured_zero == 1 ? "ZeRO-1" : "DDP";
    config::Recipe r = recipe("tp-capture-" + kind);
    r.train.steps = 8;
    testing_support::CaptureAfter capture(3);
    const std::vector<double> uninterrupted = train(r, parallelism(mesh(2), captured_zero).get(), &capture).losses;
    testing_support::SliceStore store;
    store.add(testing_support::all_ranks_slices(capture.state.slices));
    const std::vector<double> expected(uninterrupted.begin() + 4, uninterrupted.end());
    // No rank saves much more than its share of the state (2 x 2: between 22% and 28% each).
    std::int64_t mine = 0;
    for (const train::StateSlice& slice : capture.state.slices) mine += slice.data.numel();
    std::vector<std::int64_t> saved(static_cast<std::size_t>(world_size_));
    MPI_Allgather(&mine, 1, MPI_INT64_T, saved.data(), 1, MPI_INT64_T, MPI_COMM_WORLD);
    const std::int64_t total = std::accumulate(saved.begin(), saved.end(), std::int64_t{0});
    for (std::int64_t rank_saved : saved) {
      EXPECT_LT(rank_saved, total * 0.35) << kind << ": " << rank_saved << " of " << total;
    }
    int column_cuts = 0;
    for (const train::StateSlice& slice : capture.state.slices) {
      if (!slice.name.ends_with("o_proj.weight") && !slice.name.ends_with("down_proj.weight")) continue;
      ++column_cuts;
      EXPECT_TRUE(slice.transposed) << kind << ": " << slice.name;
      EXPECT_EQ(slice.data.numel() * 2, c10::multiply_integers(slice.global_shape)) << kind << ": " << slice.name;
    }
    EXPECT_GT(column_cuts, 0) << kind << ": rank " << world_rank_ << " saved no part of o_proj or down_proj";

    const auto resume = [&](train::Parallelism* parallel, const std::string& run) {
      config::Recipe resumed = recipe(run + "-" + kind);
      resumed.train.steps = 8;
      testing_support::RestoreFrom restore(capture.state, store);
      return train(resumed, parallel, &restore).losses;
    };
    EXPECT_EQ(resume(parallelism(mesh(2), captured_zero).get(), "tp-resume-2x2"), expected)
        << kind << " 2 x 2 resumed on 2 x 2";
    expect_same_losses(resume(parallelism(mesh(2), 1 - captured_zero).get(), "tp-resume-2x2-other"), expected,
                       kind + " 2 x 2 resumed on 2 x 2 with the other optimizer sharding");
    expect_same_losses(resume(parallelism(halves(), 0).get(), "tp-resume-tp2"), expected,
                       kind + " 2 x 2 resumed tensor-parallel 2");
    expect_same_losses(resume(parallelism(mesh(1), captured_zero).get(), "tp-resume-data4"), expected,
                       kind + " 2 x 2 resumed data-parallel on 4");
    expect_same_losses(resume(nullptr, "tp-resume-1"), expected, kind + " 2 x 2 resumed on 1");
  }
}

// LoRA on a cut model: the adapters follow their layers (B by rows on q, k, v, gate and up; A by
// columns on o and down), and the factors on the whole side of a layer sum their gradients over
// the group. The whole model's adapters, whatever the degree: a state captured on 2 x 2 resumes on
// one process.
TEST_F(TensorParallelTest, LoraOnACutModelMatchesOneProcessAndResumesOnOne) {
  const std::string base = shared_dir_ + "/lora-base";
  if (world_rank_ == 0) {
    models::ModelConfig config = models::model_preset("tiny-llama");
    config.vocab_size = 320;  // the byte tokenizer's 257, padded as the trainer pads it
    at::manual_seed(5);
    testing_support::write_hugging_face_directory(*models::make_model(config), base);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  auto lora = [&](const std::string& run, double dropout) {
    config::Recipe r = recipe(run);
    r.model.init = base;
    r.lora.rank = 4;
    r.lora.dropout = dropout;
    r.train.steps = 8;
    return r;
  };
  // A cut input draws the whole input's dropout mask and keeps its part: the masks one process draws.
  const Layout pair = halves();
  DataParallel tensor2(pair.data, config::ParallelConfig{}, pair.tensor);
  expect_same_losses(train(lora("lora-tp2", 0.25), &tensor2).losses,
                     train(lora("lora-alone-dropout", 0.25), nullptr).losses, "LoRA with dropout, tensor-parallel 2");

  // Data-parallel ranks draw masks of their own: without dropout from here.
  const std::vector<double> alone = train(lora("lora-alone", 0), nullptr).losses;
  testing_support::CaptureAfter capture(3);
  const Layout two_by_two = mesh(2);
  DataParallel parallel(two_by_two.data, config::ParallelConfig{}, two_by_two.tensor);
  expect_same_losses(train(lora("lora-2x2", 0), &parallel, &capture).losses, alone, "LoRA, data 2 x tensor 2");
  expect_same_losses(train(lora("lora-zero-2x2", 0), parallelism(two_by_two, 1).get()).losses, alone,
                     "LoRA, ZeRO-1 2 x tensor 2");
  testing_support::SliceStore store;
  store.add(testing_support::all_ranks_slices(capture.state.slices));
  testing_support::RestoreFrom restore(capture.state, store);
  expect_same_losses(train(lora("lora-resume-1", 0), nullptr, &restore).losses,
                     std::vector<double>(alone.begin() + 4, alone.end()), "LoRA, 2 x 2 resumed on 1");
}

// GPT-2's adapters on a cut model: c_attn's B in three blocks like its layer, the c_proj layers' A
// by columns with the whole input's dropout mask, their B gradients summed over the group.
TEST_F(TensorParallelTest, LoraOnACutGpt2MatchesOneProcess) {
  const std::string base = shared_dir_ + "/lora-gpt2-base";
  if (world_rank_ == 0) {
    models::ModelConfig config = models::model_preset("tiny");
    config.vocab_size = 320;
    at::manual_seed(6);
    testing_support::write_hugging_face_directory(*models::make_model(config), base);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  auto lora = [&](const std::string& run) {
    config::Recipe r = recipe(run, "tiny");
    r.model.vocab_size = 320;
    r.model.init = base;
    r.lora.rank = 4;
    r.lora.dropout = 0.25;
    r.train.steps = 8;
    return r;
  };
  const Layout pair = halves();
  DataParallel tensor2(pair.data, config::ParallelConfig{}, pair.tensor);
  expect_same_losses(train(lora("lora-gpt2-tp2"), &tensor2).losses, train(lora("lora-gpt2-alone"), nullptr).losses,
                     "GPT-2 LoRA with dropout, tensor-parallel 2");
}

// Through files: 2 x 2 ranks, DDP or ZeRO-1, save encrypted checkpoints (every rank writes its
// share of the model and moments, and its generators); the job "dies" after step 4's; the world
// resumes from the files as 2 tensor-parallel pairs and as 4 single processes.
TEST_F(TensorParallelTest, CheckpointFilesFrom2x2ResumeOnTensor2And1) {
  const std::unique_ptr<checkpoint::KeyProvider> key = shared_key();
  for (const int zero : {0, 1}) {
    const std::string kind = zero == 1 ? "zero" : "ddp";
    const std::string checkpoints = shared_dir_ + "/tp-checkpoints-" + kind;
    const auto settings = [&](std::int64_t interval) { return checkpoint_settings(checkpoints, key.get(), interval); };
    config::Recipe r = recipe("tp-files-" + kind);
    r.train.steps = 8;
    std::vector<double> uninterrupted;
    {
      launch::MpiRankGroup group(MPI_COMM_WORLD);
      train::CheckpointHooks hooks(settings(4), group);
      uninterrupted = train(r, parallelism(mesh(2), zero).get(), &hooks).losses;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank_ == 0) {
      const std::vector<checkpoint::CommittedCheckpoint> saved = checkpoint::list_checkpoints(checkpoints);
      ASSERT_EQ(saved.size(), 2u);
      // Each rank of a tensor pair wrote its own half of o_proj, transposed, into its own shard.
      checkpoint::CheckpointReader reader(saved[0].path, key.get());
      std::set<std::string> shards;
      for (const checkpoint::ShardRecord& shard : reader.manifest().shards) {
        for (const checkpoint::SliceRecord& slice : shard.slices) {
          if (slice.name != "model.model.layers.0.self_attn.o_proj.weight") continue;
          shards.insert(shard.file);
          EXPECT_TRUE(slice.transposed) << kind;
          EXPECT_EQ(slice.numel * 2, c10::multiply_integers(slice.global_shape)) << kind;
        }
      }
      EXPECT_EQ(shards.size(), 2u) << kind;
      checkpoint::remove_checkpoint(saved[1].path);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const std::vector<double> expected(uninterrupted.begin() + 4, uninterrupted.end());

    const auto resume = [&](int ranks, const std::string& run) {
      config::Recipe resumed = recipe(run + "-" + kind);
      resumed.train.steps = 8;
      return in_jobs_of(ranks, [&](launch::MpiRankGroup& group) {
        train::CheckpointHooks hooks(settings(0), group);
        return train(resumed, ranks == 1 ? nullptr : parallelism(halves(), 0).get(), &hooks).losses;
      });
    };
    expect_same_losses(resume(2, "tp-files-resume-tp2"), expected,
                       kind + " 2 x 2 resumed tensor-parallel 2 from files");
    expect_same_losses(resume(1, "tp-files-resume-1"), expected, kind + " 2 x 2 resumed on 1 from files");
  }
}

// The byte tokenizer's 257 ids, which no degree divides, in GPT-2 trained as one process; its
// checkpoint resumes on 2 x 2 ranks under ZeRO-1, the vocabulary cut as 258 rows, the last masked
// (the moments' pieces too), and that run's checkpoint on one process again as 258 rows: both
// continue the uninterrupted run (Note [A checkpoint's vocabulary on another number of ranks]).
TEST_F(TensorParallelTest, AVocabularyNoDegreeDividesResumesCutAndBackFromFiles) {
  const std::unique_ptr<checkpoint::KeyProvider> key = shared_key();
  config::Recipe r = recipe("vocab-alone", "tiny");
  r.train.steps = 8;
  const std::string checkpoints = shared_dir_ + "/vocab-checkpoints";
  const std::vector<double> uninterrupted = in_jobs_of(1, [&](launch::MpiRankGroup& group) {
    // Every rank trains alone; rank 0's checkpoints are the ones resumed.
    train::CheckpointHooks hooks(checkpoint_settings(checkpoints + std::to_string(world_rank_), key.get(), 4), group);
    return train(r, nullptr, &hooks).losses;
  });
  const std::string source = checkpoints + "0";
  const auto drop_newest = [&] {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank_ == 0) checkpoint::remove_checkpoint(checkpoint::newest_checkpoint(source)->path);
    MPI_Barrier(MPI_COMM_WORLD);
  };
  const auto vocabulary_at = [&](const std::string& step) {
    const checkpoint::CheckpointReader reader(source + "/" + step, key.get());
    const std::optional<train::StoredVocabulary> stored = train::stored_vocabulary(reader);
    return stored ? str_cat(stored->rows, " rows, ", stored->padding, " masked") : std::string("none");
  };
  EXPECT_EQ(vocabulary_at("step-00000004"), "257 rows, 0 masked");
  drop_newest();

  config::Recipe cut = r;
  cut.run.dir = shared_dir_ + "/vocab-cut-rank" + std::to_string(world_rank_);
  cut.parallel.tensor = 2;
  cut.parallel.zero = 1;
  std::vector<double> resumed_cut;
  {
    launch::MpiRankGroup group(MPI_COMM_WORLD);
    train::CheckpointHooks hooks(checkpoint_settings(source, key.get(), 2), group);
    resumed_cut = train(cut, parallelism(mesh(2), 1).get(), &hooks).losses;
  }
  expect_same_losses(resumed_cut, std::vector<double>(uninterrupted.begin() + 4, uninterrupted.end()),
                     "one process's 257 ids resumed on 2 x tensor 2 (ZeRO-1)");
  EXPECT_EQ(vocabulary_at("step-00000006"), "258 rows, 1 masked");
  drop_newest();

  config::Recipe alone_again = r;
  alone_again.run.dir = shared_dir_ + "/vocab-alone-again-rank" + std::to_string(world_rank_);
  const std::vector<double> resumed_alone = in_jobs_of(1, [&](launch::MpiRankGroup& group) {
    train::CheckpointHooks hooks(checkpoint_settings(source, key.get(), 0), group);
    return train(alone_again, nullptr, &hooks).losses;
  });
  expect_same_losses(resumed_alone, std::vector<double>(uninterrupted.begin() + 6, uninterrupted.end()),
                     "2 x tensor 2's 258 rows (1 masked) resumed on one process");
}

}  // namespace
}  // namespace albion::parallel
