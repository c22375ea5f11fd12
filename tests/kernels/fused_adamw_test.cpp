// File: tests/kernels/fused_adamw_test.cpp
// The fused AdamW step against AdamW written as torch ops (the same formulas optim::AdamW uses),
// over several tensors of awkward sizes, decayed or not, for three steps; the bf16 copy-out; and
// (suite FusedAdamWCuda, label gpu; also on the CPU emulator in kernels_on_emulator_test) the
// multi-tensor CUDA launch against the CPU reference, over aligned tensors (16-byte packs) and
// views one element in (the scalar path), copies poisoned first.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/adamw/fused_adamw.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

const std::vector<std::int64_t> kSizes = {1, 7, 65536, 65537, 200000};

AdamWHyper hyper_at(int step) {
  AdamWHyper h;
  h.lr = 1e-3f;
  h.beta1 = 0.9f;
  h.beta2 = 0.95f;
  h.eps = 1e-8f;
  h.weight_decay = 0.1f;
  h.bias_correction1 = 1.0f - std::pow(h.beta1, static_cast<float>(step));
  h.bias_correction2 = 1.0f - std::pow(h.beta2, static_cast<float>(step));
  return h;
}

// `offset` > 0: every operand a view starting that many elements into its buffer. `copies`: with
// bf16 copies, poisoned with NaN so an element the kernel misses shows.
std::vector<AdamWOperand> operands(const at::Device& device, std::int64_t offset = 0, bool copies = false) {
  std::vector<AdamWOperand> result;
  at::manual_seed(4);
  const auto make = [&](at::Tensor values) { return values.to(device).narrow(0, offset, values.numel() - offset); };
  for (std::size_t i = 0; i < kSizes.size(); ++i) {
    const std::int64_t n = kSizes[i] + offset;
    AdamWOperand o;
    o.parameter = make(at::randn({n}));
    o.gradient = make(at::randn({n}));
    o.exp_avg = make(at::zeros({n}));
    o.exp_avg_sq = make(at::zeros({n}));
    o.decayed = i % 2 == 0;
    if (copies) o.bf16_copy = make(at::full({n}, NAN, at::kBFloat16));
    result.push_back(o);
  }
  return result;
}

TEST(FusedAdamW, ReferenceMatchesTorchOps) {
  std::vector<AdamWOperand> fused = operands(at::kCPU);
  std::vector<AdamWOperand> plain = operands(at::kCPU);
  for (int step = 1; step <= 3; ++step) {
    const AdamWHyper h = hyper_at(step);
    fused_adamw_step(fused, h);
    for (AdamWOperand& o : plain) {  // optim::AdamW's sequence of torch ops
      o.exp_avg.mul_(h.beta1).add_(o.gradient, 1.0 - h.beta1);
      o.exp_avg_sq.mul_(h.beta2).addcmul_(o.gradient, o.gradient, 1.0 - h.beta2);
      if (o.decayed) o.parameter.mul_(1.0 - h.lr * h.weight_decay);
      const at::Tensor denominator = (o.exp_avg_sq / h.bias_correction2).sqrt_().add_(h.eps);
      o.parameter.addcdiv_(o.exp_avg, denominator, -h.lr / h.bias_correction1);
    }
  }
  // Absolute: torch rounds its scalars (1 - beta1, ...) from double, the reference in float, so
  // elements near zero differ in relative terms by more than their O(1e-7) absolute difference.
  const auto max_difference = [](const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<double>(); };
  for (std::size_t i = 0; i < fused.size(); ++i) {
    EXPECT_LT(max_difference(fused[i].parameter, plain[i].parameter), 1e-6) << kSizes[i];
    EXPECT_LT(max_difference(fused[i].exp_avg, plain[i].exp_avg), 1e-6) << kSizes[i];
    EXPECT_LT(max_difference(fused[i].exp_avg_sq, plain[i].exp_avg_sq), 1e-6) << kSizes[i];
  }
}

TEST(FusedAdamW, TheBf16CopyIsTheUpdatedParameterRoundedToNearestEven) {
  std::vector<AdamWOperand> fused = operands(at::kCPU, 0, /*copies=*/true);
  for (int step = 1; step <= 2; ++step) fused_adamw_step(fused, hyper_at(step));
  for (const AdamWOperand& o : fused) {
    EXPECT_TRUE(at::equal(o.bf16_copy, o.parameter.to(at::kBFloat16))) << o.parameter.numel();
  }
}

TEST(FusedAdamW, RefusesMixedOperands) {
  std::vector<AdamWOperand> bad = operands(at::kCPU);
  bad[1].gradient = bad[1].gradient.to(at::kDouble);
  EXPECT_THROW(fused_adamw_step(bad, hyper_at(1)), UsageError);
  bad = operands(at::kCPU);
  bad[2].exp_avg = at::zeros({3});
  EXPECT_THROW(fused_adamw_step(bad, hyper_at(1)), UsageError);
  bad = operands(at::kCPU);
  bad[0].bf16_copy = at::zeros({bad[0].parameter.numel()});  // fp32, not bf16
  EXPECT_THROW(fused_adamw_step(bad, hyper_at(1)), UsageError);
}

// Blocks update their chunks concurrently: memory that one operand's block writes must be no other
// operand's, whole or in part.
TEST(FusedAdamW, RefusesOperandsThatShareMemory) {
  const auto refused = [](const std::vector<AdamWOperand>& ops) {
    const std::vector<at::Tensor> before = {ops[0].parameter.clone(), ops[1].parameter.clone()};
    EXPECT_THROW(fused_adamw_step(ops, hyper_at(1)), UsageError);
    // Checked before anything is written.
    EXPECT_TRUE(at::equal(ops[0].parameter, before[0]) && at::equal(ops[1].parameter, before[1]));
  };
  std::vector<AdamWOperand> bad = operands(at::kCPU);
  bad.push_back(bad[1]);  // the same operand twice
  refused(bad);
  bad = operands(at::kCPU);
  bad[0].exp_avg_sq = bad[0].exp_avg;
  refused(bad);
  // Two views of one buffer that overlap by half: different start addresses.
  const at::Tensor buffer = at::zeros({3 * 7});
  bad = operands(at::kCPU);
  bad[1].exp_avg = buffer.narrow(0, 0, 7);
  bad[1].exp_avg_sq = buffer.narrow(0, 3, 7);
  refused(bad);
  bad = operands(at::kCPU);
  bad[1].gradient = bad[4].parameter.narrow(0, 0, 7);  // read by one block while another writes it
  refused(bad);
  bad = operands(at::kCPU, 0, /*copies=*/true);
  bad[1].bf16_copy = bad[3].bf16_copy.narrow(0, 0, 7);
  refused(bad);

  // Memory that is only read may be shared: two gradients, views of one buffer.
  const at::Tensor gradients = at::randn({kSizes[3]});
  std::vector<AdamWOperand> shared = operands(at::kCPU), separate = operands(at::kCPU);
  shared[2].gradient = gradients.narrow(0, 0, kSizes[2]);
  shared[3].gradient = gradients;
  separate[2].gradient = gradients.narrow(0, 0, kSizes[2]).clone();
  separate[3].gradient = gradients.clone();
  fused_adamw_step(shared, hyper_at(1));
  fused_adamw_step(separate, hyper_at(1));
  EXPECT_TRUE(at::equal(shared[2].parameter, separate[2].parameter));
  EXPECT_TRUE(at::equal(shared[3].parameter, separate[3].parameter));
}

TEST(FusedAdamW, BumpsTheVersionOfWhatItWrites) {
  std::vector<AdamWOperand> ops = operands(at::kCPU);
  const std::int64_t parameter = ops[0].parameter._version(), gradient = ops[0].gradient._version();
  fused_adamw_step(ops, hyper_at(1));
  EXPECT_GT(ops[0].parameter._version(), parameter);
  EXPECT_EQ(ops[0].gradient._version(), gradient);
}

TEST(FusedAdamWCuda, KernelMatchesTheReference) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (const std::int64_t offset : {0, 1}) {  // 16-byte packs; the scalar path
    // Each call makes its own tensors from the same seed: the reference's never alias the kernel's,
    // even where both are on the CPU (the emulated build).
    std::vector<AdamWOperand> device = operands(kernel_device(), offset, /*copies=*/true);
    std::vector<AdamWOperand> host = operands(at::kCPU, offset, /*copies=*/true);
    for (int step = 1; step <= 3; ++step) {
      {
        const OnKernelDevice on_device;
        fused_adamw_step(device, hyper_at(step));
      }
      fused_adamw_step(host, hyper_at(step));
    }
    for (std::size_t i = 0; i < device.size(); ++i) {
      EXPECT_LT(max_relative_error(device[i].parameter, host[i].parameter), 1e-5) << kSizes[i] << " offset " << offset;
      EXPECT_LT(max_relative_error(device[i].exp_avg, host[i].exp_avg), 1e-5) << kSizes[i] << " offset " << offset;
      EXPECT_LT(max_relative_error(device[i].exp_avg_sq, host[i].exp_avg_sq), 1e-5)
          << kSizes[i] << " offset " << offset;
      EXPECT_LT(max_relative_error(device[i].bf16_copy, host[i].bf16_copy), 1e-2) << kSizes[i] << " offset " << offset;
    }
  }
}

}  // namespace
}  // namespace albion::kernels
