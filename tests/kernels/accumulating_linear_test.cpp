// File: tests/kernels/accumulating_linear_test.cpp
// kernels/linear/accumulating_linear.h under bf16 autocast, over three micro-batches: on the CPU
// the weight's and bias's .grad and the input's gradient are autograd's (torch's linear or addmm,
// then AccumulateGrad), for both weight layouts, with and without a bias, for fp32 and bf16 inputs;
// the output may be changed in place; a .grad that is a view into a larger buffer (data
// parallelism's buckets) is written in place;
// post-accumulate hooks run once per backward; it applies only under autocast, with autograd, to a
// trainable fp32 weight. With a GPU: the products accumulate in fp32, at least as close to an fp64
// reference as autograd's bf16 gradients are.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <string>
#include <vector>

#include "kernels/common/autocast_scope.h"
#include "kernels/linear/accumulating_linear.h"
#include "tests/kernels/kernel_device.h"
#include "tests/kernels/relative_error.h"

namespace albion::kernels {
namespace {

constexpr std::int64_t kIn = 24;
constexpr std::int64_t kOut = 40;
constexpr int kMicroBatches = 3;

struct Gradients {
  at::Tensor weight, bias;
  std::vector<at::Tensor> inputs;
};

enum class Path { kAccumulating, kAutograd, kFp64 };

// Three micro-batches through one layer; the same draws whichever the path.
Gradients micro_batches(const at::Device& device, WeightLayout layout, bool with_bias, at::ScalarType x_dtype,
                        Path path) {
  at::manual_seed(5);
  const auto on = [&](at::Tensor t) { return t.to(device).to(path == Path::kFp64 ? at::kDouble : at::kFloat); };
  const bool in_by_out = layout == WeightLayout::kInByOut;
  const at::Tensor weight = on(at::randn(in_by_out ? at::IntArrayRef{kIn, kOut} : at::IntArrayRef{kOut, kIn}))
                                .requires_grad_();
  const at::Tensor bias = with_bias ? on(at::randn({kOut})).requires_grad_() : at::Tensor();
  Gradients grads;
  for (int micro = 0; micro < kMicroBatches; ++micro) {
    at::Tensor x = on(at::randn({2, 5, kIn}));
    if (path != Path::kFp64) x = x.to(x_dtype);
    x.requires_grad_();
    const at::Tensor dy = on(at::randn({2, 5, kOut}));
    at::Tensor y;
    {
      const Bf16AutocastScope autocast(device.type(), path != Path::kFp64);
      if (path == Path::kAccumulating) {
        y = accumulating_linear(x, weight, bias, layout);
      } else if (in_by_out) {
        const at::Tensor rows = x.reshape({-1, kIn});
        y = (with_bias ? at::addmm(bias, rows, weight) : at::mm(rows, weight)).view({2, 5, kOut});
      } else {
        y = with_bias ? at::linear(x, weight, bias) : at::linear(x, weight);
      }
    }
    y.mul_(1.0);  // changed in place, as what follows a product may (the models' RoPE does)
    y.backward(dy.to(y.scalar_type()));
    grads.inputs.push_back(x.grad());
  }
  grads.weight = weight.grad();
  grads.bias = bias.defined() ? bias.grad() : at::Tensor();
  return grads;
}

struct Case {
  WeightLayout layout;
  bool bias;
  at::ScalarType x_dtype;
};

std::vector<Case> cases() {
  std::vector<Case> all;
  for (WeightLayout layout : {WeightLayout::kOutByIn, WeightLayout::kInByOut}) {
    for (bool bias : {false, true}) {
      for (at::ScalarType x_dtype : {at::kFloat, at::kBFloat16}) all.push_back({layout, bias, x_dtype});
    }
  }
  return all;
}

std::string name(const Case& c) {
  return std::string(c.layout == WeightLayout::kInByOut ? "[in, out]" : "[out, in]") + (c.bias ? " + bias" : "") +
         ", x " + (c.x_dtype == at::kFloat ? "fp32" : "bf16");
}

// The same products as autograd's on the CPU (bf16, then added); the transposed product of the
// weight's gradient may sum in another order, so within a bf16 rounding rather than bit for bit.
TEST(AccumulatingLinear, GivesAutogradsGradientsOverMicroBatches) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c));
    const Gradients want = micro_batches(at::kCPU, c.layout, c.bias, c.x_dtype, Path::kAutograd);
    const Gradients got = micro_batches(at::kCPU, c.layout, c.bias, c.x_dtype, Path::kAccumulating);
    ASSERT_TRUE(got.weight.defined());
    EXPECT_EQ(got.weight.scalar_type(), at::kFloat);
    EXPECT_LT(max_error_relative_to_scale(got.weight, want.weight), 1e-2);
    if (c.bias) {
      EXPECT_LT(max_error_relative_to_scale(got.bias, want.bias), 1e-2);
    }
    for (int micro = 0; micro < kMicroBatches; ++micro) {
      EXPECT_EQ(got.inputs[micro].scalar_type(), c.x_dtype);
      EXPECT_TRUE(same_bits(got.inputs[micro], want.inputs[micro])) << "micro-batch " << micro;
    }
  }
}

class CountingHook final : public torch::autograd::PostAccumulateGradHook {
 public:
  explicit CountingHook(int* calls) : calls_(calls) {}
  void operator()(const torch::autograd::Variable&) override { ++*calls_; }

 private:
  int* calls_;
};

// As data parallelism seats it: .grad a view into a bucket, and a hook that learns it is complete.
TEST(AccumulatingLinear, WritesABucketsViewInPlaceAndRunsTheHook) {
  const at::Tensor weight = at::randn({kOut, kIn}).requires_grad_();
  const at::Tensor bucket = at::zeros({kOut * kIn + 7});
  weight.mutable_grad() = bucket.narrow(0, 7, kOut * kIn).view({kOut, kIn});
  int calls = 0;
  torch::autograd::impl::set_post_acc_grad_hooks(weight, std::make_unique<CountingHook>(&calls));
  at::Tensor sum = at::zeros({kOut, kIn});
  for (int micro = 0; micro < 2; ++micro) {
    const at::Tensor x = at::randn({6, kIn});
    const at::Tensor dy = at::randn({6, kOut});
    {
      const Bf16AutocastScope autocast(at::kCPU);
      accumulating_linear(x, weight, at::Tensor(), WeightLayout::kOutByIn).backward(dy.to(at::kBFloat16));
    }
    sum += at::mm(dy.to(at::kBFloat16).t(), x.to(at::kBFloat16)).to(at::kFloat);
    EXPECT_EQ(calls, micro + 1);
  }
  torch::autograd::impl::set_post_acc_grad_hooks(weight, nullptr);
  EXPECT_EQ(weight.grad().data_ptr(), bucket.narrow(0, 7, 1).data_ptr()) << "the bucket's view was replaced";
  EXPECT_LT(max_error_relative_to_scale(bucket.narrow(0, 7, kOut * kIn).view({kOut, kIn}), sum), 1e-2);
  EXPECT_EQ(bucket.narrow(0, 0, 7).abs().sum().item<float>(), 0.0f) << "written outside the view";
}

TEST(AccumulatingLinear, AppliesOnlyToTrainableFp32WeightsUnderAutocastWithAutograd) {
  const at::Tensor x = at::randn({3, kIn});
  const at::Tensor weight = at::randn({kOut, kIn}).requires_grad_();
  EXPECT_FALSE(accumulates_in_place(x, weight)) << "without autocast";
  const Bf16AutocastScope autocast(at::kCPU);
  EXPECT_TRUE(accumulates_in_place(x, weight));
  EXPECT_FALSE(accumulates_in_place(x, weight.detach())) << "a frozen weight (LoRA's base)";
  EXPECT_FALSE(accumulates_in_place(x, weight.detach().to(at::kBFloat16).requires_grad_())) << "a bf16 weight";
  const at::NoGradGuard no_grad;
  EXPECT_FALSE(accumulates_in_place(x, weight)) << "without autograd";
}

// On the GPU the weight's gradient is accumulated in fp32 by cuBLAS, never rounded to bf16: against
// an fp64 reference, at least as close as autograd's bf16 gradient (plus a little for the sums'
// order); the bias and the input's gradient as autograd's.
TEST(AccumulatingLinearCuda, AccumulatesInFp32AtLeastAsAccuratelyAsAutograd) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const at::Device device = kernel_device();
  for (const Case& c : cases()) {
    SCOPED_TRACE(name(c));
    const Gradients exact = micro_batches(device, c.layout, c.bias, c.x_dtype, Path::kFp64);
    const Gradients autograd = micro_batches(device, c.layout, c.bias, c.x_dtype, Path::kAutograd);
    const Gradients got = micro_batches(device, c.layout, c.bias, c.x_dtype, Path::kAccumulating);
    EXPECT_LE(max_error_relative_to_scale(got.weight, exact.weight),
              max_error_relative_to_scale(autograd.weight, exact.weight) * 1.05 + 1e-6);
    if (c.bias) {
      EXPECT_LT(max_error_relative_to_scale(got.bias, autograd.bias), 1e-2);
    }
    for (int micro = 0; micro < kMicroBatches; ++micro) {
      EXPECT_LT(max_error_relative_to_scale(got.inputs[micro], autograd.inputs[micro]), 1e-2);
    }
  }
}

}  // namespace
}  // namespace albion::kernels
