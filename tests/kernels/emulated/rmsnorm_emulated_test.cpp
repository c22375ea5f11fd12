// File: tests/kernels/emulated/rmsnorm_emulated_test.cpp
// kernels/rmsnorm/rmsnorm.cu run on the CPU emulator against rmsnorm_ref.cpp: 16-byte packs,
// element-wise rows (odd lengths, misaligned pointers), one to 1024 threads per row, rows held in
// registers and rows too long for them (32,776), the weight's gradient summed in the backward
// pass over row segments; the residual add in the kernels against the add apart, and y written once
// per product in bf16 with its copies' gradients summed in the kernel against the fp32 kernel's y
// rounded and its dy summed apart, bit for bit.
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

// One operand per product (RmsNormForwardParams::bf16_output and further_outputs, RmsNormBackwardParams::
// bf16_grad_output and further_grad_outputs; Note [One operand per product], rmsnorm_torch.cpp), for
// fp32 x with `copies` copies and a residual in R (fp32 or bf16; none where `with_residual` is
// false): each copy is the fp32 kernel's y rounded to bf16, the sum and 1/rms are the fp32 kernel's,
// and dx (with the sum's gradient) and dw are the fp32 kernel's on dy = (d0 + d1) + d2 summed in
// fp32 apart, bit for bit.
template <typename R>
void check_operands(std::int64_t rows, std::int64_t cols, std::int64_t offset, int copies, bool with_residual) {
  SCOPED_TRACE(case_name<float>(rows, cols, offset) + ", " + std::to_string(copies) + " operands" +
               (with_residual ? ", residual " + dtype_name<R>() : ""));
  using Bf16 = __nv_bfloat16;
  const std::size_t n = rows * cols + offset;
  const std::size_t elements = rows * cols;
  const DeviceBuffer<float> x = random_values<float>(n, cols, 2.0f);
  const DeviceBuffer<R> r = random_values<R>(n, cols + 4);
  const DeviceBuffer<float> w = random_values<float>(cols + offset, cols + 1);
  const DeviceBuffer<float> ds = random_values<float>(n, cols + 5);
  std::vector<DeviceBuffer<Bf16>> dys;
  for (int c = 0; c < copies; ++c) dys.push_back(random_values<Bf16>(n, cols + 2 + 7 * c));

  // The forward pass in fp32, then with the copies.
  DeviceBuffer<float> y = poisoned<float>(n), sum = poisoned<float>(n);
  DeviceBuffer<float> inv_rms = poisoned<float>(rows);
  RmsNormForwardParams fp32{x.data() + offset, w.data() + offset, y.data() + offset, inv_rms.data(), rows, cols,
                            1e-5f, DType::kFloat32};
  if (with_residual) {
    fp32.residual = r.data() + offset;
    fp32.sum = sum.data() + offset;
    fp32.bf16_residual = std::is_same_v<R, Bf16>;
  }
  launch_rmsnorm_forward(fp32, nullptr);
  std::vector<DeviceBuffer<Bf16>> operands;
  for (int c = 0; c < copies; ++c) operands.push_back(poisoned<Bf16>(n));
  DeviceBuffer<float> operand_sum = poisoned<float>(n);
  DeviceBuffer<float> operand_inv_rms = poisoned<float>(rows);
  RmsNormForwardParams bf16 = fp32;
  bf16.bf16_output = true;
  bf16.output = operands[0].data() + offset;
  for (int c = 1; c < copies; ++c) bf16.further_outputs[c - 1] = operands[c].data() + offset;
  bf16.inv_rms = operand_inv_rms.data();
  if (with_residual) bf16.sum = operand_sum.data() + offset;
  launch_rmsnorm_forward(bf16, nullptr);
  std::vector<float> y_rounded = widened(y.data() + offset, elements);
  for (float& v : y_rounded) v = widen(narrow<Bf16>(v));
  for (int c = 0; c < copies; ++c) {
    EXPECT_EQ(widened(operands[c].data() + offset, elements), y_rounded) << "operand " << c;
  }
  EXPECT_EQ(widened(operand_inv_rms), widened(inv_rms));
  if (with_residual) {
    EXPECT_EQ(widened(operand_sum.data() + offset, elements), widened(sum.data() + offset, elements));
  }

  // The backward pass: the fp32 kernel on the gradients summed apart, then on the copies' own.
  const DeviceBuffer<float>& normalised = with_residual ? sum : x;
  DeviceBuffer<float> dy_summed(n);
  for (std::size_t i = 0; i < n; ++i) {
    float total = widen(dys[0].data()[i]);
    for (int c = 1; c < copies; ++c) total += widen(dys[c].data()[i]);
    dy_summed[i] = total;
  }
  RmsNormBackwardParams backward{dy_summed.data() + offset, normalised.data() + offset, w.data() + offset,
                                 inv_rms.data(), nullptr, rows, cols, DType::kFloat32};
  if (with_residual) backward.grad_sum = ds.data() + offset;
  RmsNormBackwardParams from_copies = backward;
  from_copies.bf16_grad_output = true;
  from_copies.grad_output = dys[0].data() + offset;
  for (int c = 1; c < copies; ++c) from_copies.further_grad_outputs[c - 1] = dys[c].data() + offset;
  for (std::int64_t segments : segment_counts_for(from_copies)) {
    SCOPED_TRACE(std::to_string(segments) + " weight segments");
    EXPECT_EQ(backward_gradients<float>(from_copies, segments, n, offset),
              backward_gradients<float>(backward, segments, n, offset));
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

TEST_P(RmsNormEmulated, OperandsPerProductAreTheFp32NormRoundedAndSumTheirGradients) {
  // Rows in registers (9x1000, the weight's gradient summed in the pass or apart), looping rows,
  // element-wise rows (37 long; offset 1).
  for (auto [rows, cols, offset] : {std::tuple{9, 1000, 0}, {2, 8200, 0}, {3, 37, 0}, {3, 64, 1}}) {
    for (int copies : {1, 2, 3, kMaxNormOutputs}) {
      check_operands<float>(rows, cols, offset, copies, /*with_residual=*/false);
      check_operands<__nv_bfloat16>(rows, cols, offset, copies, /*with_residual=*/true);
    }
    check_operands<float>(rows, cols, offset, 2, /*with_residual=*/true);
  }
}

ALBION_EMULATED_SCHEDULES(RmsNormEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
