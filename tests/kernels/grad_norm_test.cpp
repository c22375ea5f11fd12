// File: tests/kernels/grad_norm_test.cpp
// The multi-tensor squared norm: the CPU reference against torch's own norm (fp32 and bf16
// tensors of awkward sizes, mixed in one call), bad inputs refused; and (suite GradNormCuda, label
// gpu; also on the CPU emulator in kernels_on_emulator_test) the CUDA launches against the
// reference, run to run identical, from unaligned views too.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "kernels/grad_norm/grad_norm.h"
#include "runtime/base/error.h"
#include "tests/kernels/kernel_device.h"

namespace albion::kernels {
namespace {

const std::vector<std::int64_t> kSizes = {1, 7, 65536, 65537, 200003};

std::vector<at::Tensor> tensors(const at::Device& device) {
  at::manual_seed(11);
  std::vector<at::Tensor> result;
  for (std::size_t i = 0; i < kSizes.size(); ++i) {
    at::Tensor t = at::randn({kSizes[i]}) * (1.0 + static_cast<double>(i));
    result.push_back((i % 2 == 0 ? t : t.to(at::kBFloat16)).to(device));
  }
  return result;
}

double torch_squared_norm(const std::vector<at::Tensor>& ts) {
  double sum = 0;
  for (const at::Tensor& t : ts) sum += t.to(at::kDouble).cpu().pow(2).sum().item<double>();
  return sum;
}

TEST(GradNorm, ReferenceMatchesTorch) {
  const std::vector<at::Tensor> ts = tensors(at::kCPU);
  const at::Tensor result = squared_norm(ts);
  EXPECT_EQ(result.scalar_type(), at::kDouble);
  EXPECT_EQ(result.dim(), 0);
  EXPECT_NEAR(result.item<double>() / torch_squared_norm(ts), 1.0, 1e-12);
  EXPECT_EQ(squared_norm({}).item<double>(), 0.0);
  EXPECT_EQ(squared_norm({at::zeros({0})}).item<double>(), 0.0);
}

TEST(GradNorm, RefusesUnsupportedInputs) {
  EXPECT_THROW(squared_norm({at::ones({4}, at::kHalf)}), UsageError);
  EXPECT_THROW(squared_norm({at::ones({4, 4}).t()}), UsageError);  // not contiguous
  EXPECT_THROW(squared_norm({at::ones({4}), at::Tensor()}), UsageError);
}

TEST(GradNormCuda, KernelMatchesTheReferenceAndIsDeterministic) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const at::Device device = kernel_device();
  std::vector<at::Tensor> operands = tensors(device);
  // Views starting 1 element in: not 16-byte aligned, so the scalar path runs too.
  operands.push_back(at::randn({100001}, at::TensorOptions().device(device)).narrow(0, 1, 100000));
  operands.push_back(at::randn({70001}, at::TensorOptions().device(device)).to(at::kBFloat16).narrow(0, 1, 70000));
  // Copies, where the emulated build's .cpu() would hand back the kernel's own tensors.
  std::vector<at::Tensor> host;
  for (const at::Tensor& t : operands) host.push_back(t.cpu().clone());
  const double expected = squared_norm(host).item<double>();
  {
    const OnKernelDevice on_device;
    poison_kernel_allocator(1 << 16);  // the partials
    const at::Tensor first = squared_norm(operands);
    EXPECT_EQ(first.device().type(), kernel_device().type());
    EXPECT_LT(std::abs(first.item<double>() / expected - 1.0), 1e-5);
    for (int run = 0; run < 3; ++run) EXPECT_EQ(squared_norm(operands).item<double>(), first.item<double>());
    EXPECT_EQ(squared_norm({at::zeros({0}, at::TensorOptions().device(device))}).item<double>(), 0.0);
  }
  // Only a GPU gives another device to mix: in the emulated build both lists are on the CPU.
  if (kernel_device().is_cuda()) {
    EXPECT_THROW(squared_norm({operands[0], host[1]}), UsageError);  // mixed devices
  }
}

}  // namespace
}  // namespace albion::kernels
