// File: tests/kernels/emulated/rmsnorm_emulated_test.cpp
// kernels/rmsnorm/rmsnorm.cu run on the CPU emulator against rmsnorm_ref.cpp: 16-byte packs,
// element-wise rows (odd lengths, misaligned pointers), one to 1024 threads per row, rows held in
// registers and rows too long for them (32,776), the weight's gradient summed in the backward
// pass over row segments; the residual add in the kernels against the add apart, bit for bit.
#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kernels/norm_grad/norm_parameter_grad.cuh"
#include "kernels/rmsnorm/rmsnorm.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class RmsNormEmulated : public EmulatedKernel {};

// `offset` elements into each buffer: 1 makes every pointer miss 16-byte alignment.
template <typename T>
void check(std::int64_t rows, std::int64_t cols, std::int64_t offset) {
  SCOPED_TRACE(case_name<T>(rows, cols, offset));
  const std::size_t n = rows * cols + offset;
  const DeviceBuffer<T> x = random_values<T>(n, cols, 2.0f);
  const DeviceBuffer<T> w = random_values<T>(cols + offset, cols + 1);
  const DeviceBuffer<T> dy = random_values<T>(n, cols + 2);
  DeviceBuffer<T> y = poisoned<T>(n);
  DeviceBuffer<T> dx = poisoned<T>(n);
  DeviceBuffer<float> inv_rms = poisoned<float>(rows);

  RmsNormForwardParams forward{x.data() + offset, w.data() + offset, y.data() + offset, inv_rms.data(), rows, cols,
                               1e-5f, dtype_of<T>()};
  launch_rmsnorm_forward(forward, nullptr);
  RmsNormBackwardParams backward{dy.data() + offset, x.data() + offset, w.data() + offset, inv_rms.data(),
                                 dx.data() + offset, rows, cols, dtype_of<T>()};
  launch_rmsnorm_backward(backward, nullptr);

  const std::vector<float> xf = widened(x.data() + offset, rows * cols);
  const std::vector<float> wf = widened(w.data() + offset, cols);
  const std::vector<float> dyf = widened(dy.data() + offset, rows * cols);
  std::vector<float> y_expected(rows * cols), inv_expected(rows), dx_expected(rows * cols);
  rmsnorm_forward_reference<float>(xf.data(), wf.data(), y_expected.data(), inv_expected.data(), rows, cols, 1e-5f);
  rmsnorm_backward_reference<float>(dyf.data(), xf.data(), wf.data(), inv_expected.data(), dx_expected.data(), rows,
                                    cols);
  EXPECT_LT(max_relative_error(widened(y.data() + offset, rows * cols), y_expected), tolerance<T>());
  EXPECT_LT(max_relative_error(inv_rms, inv_expected), 1e-5);
  EXPECT_LT(max_error_relative_to_scale(widened(dx.data() + offset, rows * cols), dx_expected), tolerance<T>());

  // The weight's gradient summed in the same pass, where the rows fit registers: over one segment,
  // the count the torch layer asks for, one with an empty last segment, and a row per segment.
  if (rmsnorm_backward_weight_segments(backward, /*multiprocessors=*/0) == 0) return;
  std::vector<float> dw_expected(cols);
  norm_parameter_grad_reference<float>(dyf.data(), xf.data(), nullptr, widened(inv_rms).data(), dw_expected.data(),
                                       nullptr, rows, cols);
  for (std::int64_t segments : {std::int64_t{1}, rmsnorm_backward_weight_segments(backward, 0), rows - 1, rows}) {
    if (segments < 1) continue;
    SCOPED_TRACE(std::to_string(segments) + " weight segments");
    DeviceBuffer<T> dx_summing = poisoned<T>(n);
    DeviceBuffer<float> partials = poisoned<float>(segments * cols);
    DeviceBuffer<float> dw = poisoned<float>(cols);
    RmsNormBackwardParams summing = backward;
    summing.grad_input = dx_summing.data() + offset;
    summing.grad_weight = dw.data();
    summing.weight_partials = partials.data();
    summing.weight_segments = segments;
    launch_rmsnorm_backward(summing, nullptr);
    EXPECT_LT(max_error_relative_to_scale(widened(dx_summing.data() + offset, rows * cols), dx_expected),
              tolerance<T>());
    EXPECT_LT(max_error_relative_to_scale(widened(dw), dw_expected), 1e-5);
  }
}

// The weight-segment counts a backward pass of `p` is checked with: 0 (the weight's gradient summed
// apart), and the most its pass sums it over, where it can.
std::vector<std::int64_t> segment_counts_for(const RmsNormBackwardParams& p) {
  std::vector<std::int64_t> counts{0};
  if (const std::int64_t most = rmsnorm_backward_weight_segments(p, 0); most > 0) counts.push_back(most);
  return counts;
}

// What one backward launch of `p` writes into poisoned buffers of n elements (dx in T, `offset` in):
// dx's n - offset elements, then dw where `segments` > 0 sums it in the pass.
template <typename T>
std::vector<std::vector<float>> backward_gradients(RmsNormBackwardParams p, std::int64_t segments, std::size_t n,
                                                   std::size_t offset) {
  DeviceBuffer<T> dx = poisoned<T>(n);
  DeviceBuffer<float> partials = poisoned<float>(std::max<std::int64_t>(segments, 1) * p.cols);
  DeviceBuffer<float> dw = poisoned<float>(p.cols);
  p.grad_input = dx.data() + offset;
  if (segments > 0) {
    p.grad_weight = dw.data();
    p.weight_partials = partials.data();
    p.weight_segments = segments;
  }
  launch_rmsnorm_backward(p, nullptr);
  std::vector<std::vector<float>> gradients{widened(dx.data() + offset, n - offset)};
  if (segments > 0) gradients.push_back(widened(dw));
  return gradients;
}

// The residual add in the kernels (RmsNormForwardParams::residual, RmsNormBackwardParams::grad_sum),
// x in T and the residual in R (T, or bf16 beside fp32 x: bf16_residual): the sum is x + r rounded
// to T, y and 1/rms are the plain kernel's on that sum, and dx (and dw) the plain kernel's with the
// sum's other gradient ds added to dx after it is rounded, bit for bit (Note [The residual add in
// the norm], kernels/layernorm/layernorm_torch.cpp). `offset` shifts every buffer, so both runs take
// the element-wise path or neither does.
template <typename T, typename R = T>
void check_residual(std::int64_t rows, std::int64_t cols, std::int64_t offset) {
  SCOPED_TRACE(case_name<T>(rows, cols, offset) + ", residual " + dtype_name<R>());
  const std::size_t n = rows * cols + offset;
  const std::size_t elements = rows * cols;
  const DeviceBuffer<T> x = random_values<T>(n, cols, 2.0f);
  const DeviceBuffer<R> r = random_values<R>(n, cols + 4);
  const DeviceBuffer<T> w = random_values<T>(cols + offset, cols + 1);
  const DeviceBuffer<T> dy = random_values<T>(n, cols + 2);
  const DeviceBuffer<T> ds = random_values<T>(n, cols + 5);
  DeviceBuffer<T> sum_apart(n);
  for (std::size_t i = 0; i < n; ++i) sum_apart[i] = narrow<T>(widen(x.data()[i]) + widen(r.data()[i]));

  // The forward pass: the add apart, then the plain kernel; the kernel with the residual.
  struct Forward {
    DeviceBuffer<T> y, sum;
    DeviceBuffer<float> inv_rms;
  };
  const auto forward = [&](bool residual) {
    Forward out{poisoned<T>(n), poisoned<T>(n), poisoned<float>(rows)};
    RmsNormForwardParams p{(residual ? x : sum_apart).data() + offset, w.data() + offset, out.y.data() + offset,
                           out.inv_rms.data(), rows, cols, 1e-5f, dtype_of<T>()};
    if (residual) {
      p.residual = r.data() + offset;
      p.sum = out.sum.data() + offset;
      p.bf16_residual = !std::is_same_v<T, R>;
    }
    launch_rmsnorm_forward(p, nullptr);
    return out;
  };
  Forward apart = forward(false);
  const Forward fused = forward(true);
  EXPECT_EQ(widened(fused.sum.data() + offset, elements), widened(sum_apart.data() + offset, elements));
  EXPECT_EQ(widened(fused.y.data() + offset, elements), widened(apart.y.data() + offset, elements));
  EXPECT_EQ(widened(fused.inv_rms), widened(apart.inv_rms));

  // The backward pass on the sum, with the weight's gradient apart (0 segments) and summed in it.
  RmsNormBackwardParams backward{dy.data() + offset, sum_apart.data() + offset, w.data() + offset,
                                 apart.inv_rms.data(), nullptr, rows, cols, dtype_of<T>()};
  for (std::int64_t segments : segment_counts_for(backward)) {
    SCOPED_TRACE(std::to_string(segments) + " weight segments");
    std::vector<std::vector<float>> expected = backward_gradients<T>(backward, segments, n, offset);
    std::vector<float>& dx_plus_ds = expected[0];
    for (std::size_t i = 0; i < elements; ++i) {
      dx_plus_ds[i] = widen(narrow<T>(dx_plus_ds[i] + widen(ds.data()[offset + i])));
    }
    RmsNormBackwardParams with_grad_sum = backward;
    with_grad_sum.grad_sum = ds.data() + offset;
    EXPECT_EQ(backward_gradients<T>(with_grad_sum, segments, n, offset), expected);
  }
}

TEST_P(RmsNormEmulated, MatchesReference) {
  for (auto [rows, cols, offset] :
       {std::tuple{3, 8, 0}, {2, 37, 0}, {3, 1000, 0}, {9, 1000, 0}, {2, 4096, 0}, {2, 8200, 0}, {2, 32776, 0},
        {3, 64, 1}}) {
    check<float>(rows, cols, offset);
    check<__nv_bfloat16>(rows, cols, offset);
  }
}

TEST_P(RmsNormEmulated, ResidualAddInTheKernelIsTheAddApart) {
  // Rows in registers (summing 1 or all segments), looping rows (fp32, then bf16), element-wise rows.
  for (auto [rows, cols, offset] :
       {std::tuple{9, 1000, 0}, {3, 37, 0}, {3, 64, 1}, {2, 8200, 0}, {2, 16392, 0}}) {
    check_residual<float>(rows, cols, offset);
    check_residual<float, __nv_bfloat16>(rows, cols, offset);
    check_residual<__nv_bfloat16>(rows, cols, offset);
  }
}

ALBION_EMULATED_SCHEDULES(RmsNormEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
