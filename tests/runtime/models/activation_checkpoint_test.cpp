// File: tests/runtime/models/activation_checkpoint_test.cpp
// Activation checkpointing (ModelConfig::recompute_every): the loss and every parameter's gradient
// are bit for bit those of the plain forward, for GPT-2 and Llama, every block or every second;
// LoRA adapters under a frozen base still get gradients, their dropout draws the same masks when
// recomputed and leaves the generator where the plain run leaves it; decoding and evaluation do not
// recompute; under bf16 autocast with the weights cast once for a step's micro-batches, the
// gradients are those of a cast per micro-batch; and the memory held between forward and backward
// falls, measured by a counting CPU allocator.
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include "kernels/common/autocast_scope.h"
#include "runtime/models/activation_checkpoint.h"
#include "runtime/models/lora.h"
#include "tests/runtime/models/model_test_support.h"

namespace albion::models {
namespace {

using testing::randomised_fp64_model;
using testing::small_gpt2;
using testing::small_llama;

struct LossAndGrads {
  at::Tensor loss;
  std::vector<std::pair<std::string, at::Tensor>> grads;  // of the trainable parameters
};

at::Tensor ids_for(const ModelConfig& c, std::int64_t seed) {
  at::manual_seed(seed);
  return at::randint(c.vocab_size, {3, c.context_length}, at::kLong);
}

std::vector<std::pair<std::string, at::Tensor>> trainable_gradients(CausalLm& model) {
  std::vector<std::pair<std::string, at::Tensor>> grads;
  for (auto& [name, p] : model.trainable_parameters()) {
    grads.emplace_back(name, p.grad().defined() ? p.grad().clone() : at::Tensor());
  }
  return grads;
}

LossAndGrads loss_and_grads(CausalLm& model, const at::Tensor& ids) {
  model.zero_grad();
  const at::Tensor inputs = ids.narrow(1, 0, ids.size(1) - 1);
  const at::Tensor targets = ids.narrow(1, 1, ids.size(1) - 1);
  LossAndGrads out{model.loss(inputs, targets), {}};
  out.loss.backward();
  out.grads = trainable_gradients(model);
  return out;
}

void expect_identical(const LossAndGrads& plain, const LossAndGrads& recomputed) {
  EXPECT_TRUE(at::equal(plain.loss, recomputed.loss))
      << plain.loss.item<double>() << " vs " << recomputed.loss.item<double>();
  ASSERT_EQ(plain.grads.size(), recomputed.grads.size());
  for (std::size_t i = 0; i < plain.grads.size(); ++i) {
    const auto& [name, want] = plain.grads[i];
    const at::Tensor& got = recomputed.grads[i].second;
    ASSERT_TRUE(want.defined() && got.defined()) << name << ": no gradient";
    EXPECT_TRUE(at::equal(want, got)) << name << ": max difference " << (want - got).abs().max().item<double>();
  }
}

// The same randomised weights built with `every`.
std::shared_ptr<CausalLm> with_recompute(ModelConfig config, std::int64_t every) {
  config.recompute_every = every;
  return randomised_fp64_model(config, 7);
}

class Recompute : public ::testing::TestWithParam<int> {
 protected:
  ModelConfig config() const {
    ModelConfig c = GetParam() == 0 ? small_gpt2() : small_llama(/*tie_embeddings=*/false);
    c.layers = 3;  // with every second block: blocks 0 and 2 recomputed, 1 not
    return c;
  }
};

TEST_P(Recompute, GradientsAreThoseOfThePlainForward) {
  const at::Tensor ids = ids_for(config(), 11);
  const LossAndGrads plain = loss_and_grads(*with_recompute(config(), 0), ids);
  for (std::int64_t every : {1, 2}) {
    SCOPED_TRACE(every);
    expect_identical(plain, loss_and_grads(*with_recompute(config(), every), ids));
  }
}

// Under LoRA the block's input (a frozen embedding's output) needs no gradient; the adapters inside
// still get theirs. Their dropout draws the same masks in the recomputation as in the forward, and
// the generator ends where the plain run leaves it.
TEST_P(Recompute, LoraAdaptersWithDropoutGetThePlainGradients) {
  const at::Tensor ids = ids_for(config(), 12);
  LossAndGrads results[2];
  at::Tensor next_draw[2];
  for (std::int64_t every : {0, 1}) {
    const auto model = with_recompute(config(), every);
    at::manual_seed(3);
    add_lora_adapters(*model, {4, 8, {"all-linear"}, 0.25});
    model->to(at::kDouble);
    {
      torch::NoGradGuard no_grad;  // B starts at zero: give the adapters something to pass on
      for (auto& [name, p] : model->trainable_parameters()) p.normal_(0, 0.1);
    }
    at::manual_seed(4);
    results[every] = loss_and_grads(*model, ids);
    next_draw[every] = at::rand({4}, at::kDouble);
  }
  ASSERT_FALSE(results[0].grads.empty());
  expect_identical(results[0], results[1]);
  EXPECT_TRUE(at::equal(next_draw[0], next_draw[1]));
}

// Nothing is recomputed without autograd or in eval mode: the logits are the plain ones there too.
TEST_P(Recompute, DecodingAndEvaluationRunThePlainForward) {
  const at::Tensor ids = ids_for(config(), 13);
  const auto plain = with_recompute(config(), 0);
  const auto recomputing = with_recompute(config(), 1);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(at::equal(plain->forward(ids), recomputing->forward(ids)));
  recomputing->eval();
  EXPECT_FALSE(recompute_block(1, 0, recomputing->is_training(), false));
  EXPECT_FALSE(recompute_block(1, 0, true, /*decoding=*/true));
  EXPECT_FALSE(recompute_block(0, 0, true, false));
  EXPECT_FALSE(recompute_block(2, 1, true, false));
}

// A step of two micro-batches under CPU bf16 autocast; `keep_casts`: the weights cast once for both.
LossAndGrads autocast_step(CausalLm& model, const at::Tensor& ids, bool keep_casts) {
  model.zero_grad();
  LossAndGrads out{at::zeros({}), {}};
  {
    const kernels::WeightCastsKept kept(keep_casts);
    for (std::int64_t micro = 0; micro < 2; ++micro) {
      const at::Tensor rows = ids.narrow(0, micro, 2);
      at::Tensor loss;
      {
        const kernels::Bf16AutocastScope autocast(at::kCPU);
        loss = model.loss(rows.narrow(1, 0, ids.size(1) - 1), rows.narrow(1, 1, ids.size(1) - 1));
      }
      loss.backward();
      out.loss += loss.detach().to(at::kFloat);
    }
  }
  out.grads = trainable_gradients(model);
  return out;
}

// Note [Weights cast once per step]: a recomputed block's first forward runs without autograd and
// caches its weights' casts; the recomputation and the next micro-batch are handed those casts, and
// the weights must still get their gradients.
TEST_P(Recompute, WeightsCastOncePerStepGetThePlainGradients) {
  const at::Tensor ids = ids_for(config(), 15);
  const auto fp32_model = [&](std::int64_t every) {
    const auto model = with_recompute(config(), every);
    model->to(at::kFloat);
    return model;
  };
  const LossAndGrads cast_per_micro_batch = autocast_step(*fp32_model(0), ids, /*keep_casts=*/false);
  for (std::int64_t every : {0, 1, 2}) {
    SCOPED_TRACE(every);
    expect_identical(cast_per_micro_batch, autocast_step(*fp32_model(every), ids, /*keep_casts=*/true));
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, Recompute, ::testing::Values(0, 1),
                         [](const auto& info) { return std::string(info.param == 0 ? "Gpt2" : "Llama"); });

// Every CPU allocation counted: bytes live now and the most live at once since reset().
class CountingCpuAllocator final : public c10::Allocator {
 public:
  explicit CountingCpuAllocator(c10::Allocator* base) : base_(base) {}

  c10::DataPtr allocate(std::size_t bytes) override {
    c10::DataPtr inner = base_->allocate(bytes);
    void* data = inner.get();
    if (data == nullptr) return inner;
    const std::lock_guard<std::mutex> lock(mutex());
    live_ += static_cast<std::int64_t>(bytes);
    peak_ = std::max(peak_, live_);
    blocks().emplace(data, Block{std::move(inner), bytes});
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  static void reset_peak() {
    const std::lock_guard<std::mutex> lock(mutex());
    peak_ = live_;
  }
  static std::int64_t live() {
    const std::lock_guard<std::mutex> lock(mutex());
    return live_;
  }
  static std::int64_t peak() {
    const std::lock_guard<std::mutex> lock(mutex());
    return peak_;
  }

 private:
  struct Block {
    c10::DataPtr inner;
    std::size_t bytes;
  };
  static void release(void* data) {
    c10::DataPtr inner;  // freed outside the lock
    {
      const std::lock_guard<std::mutex> lock(mutex());
      auto found = blocks().find(data);
      if (found == blocks().end()) return;
      live_ -= static_cast<std::int64_t>(found->second.bytes);
      inner = std::move(found->second.inner);
      blocks().erase(found);
    }
  }
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::unordered_map<void*, Block>& blocks() {
    static auto* map = new std::unordered_map<void*, Block>();  // outlives static destructors
    return *map;
  }
  static inline std::int64_t live_ = 0;
  static inline std::int64_t peak_ = 0;
  c10::Allocator* base_;
};

// Peak CPU bytes allocated during one forward and backward, beyond what was live before it.
std::int64_t step_peak_bytes(const ModelConfig& config, std::int64_t every, const at::Tensor& ids) {
  ModelConfig c = config;
  c.recompute_every = every;
  at::manual_seed(1);
  const auto model = make_model(c);
  const at::Tensor inputs = ids.narrow(1, 0, ids.size(1) - 1);
  const at::Tensor targets = ids.narrow(1, 1, ids.size(1) - 1);
  model->loss(inputs, targets).backward();  // the gradients exist from here on in both runs
  const std::int64_t before = CountingCpuAllocator::live();
  CountingCpuAllocator::reset_peak();
  model->loss(inputs, targets).backward();
  return CountingCpuAllocator::peak() - before;
}

TEST(RecomputeMemory, WhatTheBackwardPassKeepsFalls) {
  c10::Allocator* original = c10::GetCPUAllocator();
  static CountingCpuAllocator counting(original);
  c10::SetCPUAllocator(&counting, /*priority=*/100);
  ModelConfig c = small_gpt2();
  c.layers = 8;
  c.context_length = 129;
  const at::Tensor ids = ids_for(c, 14);
  const std::int64_t plain = step_peak_bytes(c, 0, ids);
  const std::int64_t every_second = step_peak_bytes(c, 2, ids);
  const std::int64_t every = step_peak_bytes(c, 1, ids);
  c10::SetCPUAllocator(original, /*priority=*/100);
  std::printf("peak bytes of a forward and backward, 8 blocks: plain %lld, every second block recomputed %lld "
              "(%.2fx), every block %lld (%.2fx)\n",
              static_cast<long long>(plain), static_cast<long long>(every_second),
              static_cast<double>(every_second) / static_cast<double>(plain), static_cast<long long>(every),
              static_cast<double>(every) / static_cast<double>(plain));
  EXPECT_LT(every_second, plain * 3 / 4);
  EXPECT_LT(every, every_second);
  EXPECT_LT(every, plain / 3);
}

}  // namespace
}  // namespace albion::models
