// File: tests/kernels/emulated/layernorm_emulated_test.cpp
// kernels/layernorm/layernorm.cu run on the CPU emulator against layernorm_ref.cpp: rows held in
// registers, rows too long for them (32,776), element-wise rows (odd lengths, misaligned pointers),
// the weight's and the bias's gradients summed in the backward pass over row segments; rows far
// from zero (the variance without cancellation); fp32 rows with a bf16 output and output gradient
// against the fp32 ones, bit for bit; the residual add in the kernels against the add apart, bit
// for bit.
#include <algorithm>
#include <cstdint>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "kernels/layernorm/layernorm.cuh"
#include "kernels/norm_grad/norm_parameter_grad.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class LayerNormEmulated : public EmulatedKernel {};

template <typename T>
void check(std::int64_t rows, std::int64_t cols, std::int64_t offset) {
  SCOPED_TRACE(case_name<T>(rows, cols, offset));
  const std::size_t n = rows * cols + offset;
  const DeviceBuffer<T> x = random_values<T>(n, cols, 3.0f);
  const DeviceBuffer<T> w = random_values<T>(cols + offset, cols + 1);
  const DeviceBuffer<T> b = random_values<T>(cols + offset, cols + 2);
  const DeviceBuffer<T> dy = random_values<T>(n, cols + 3);
  DeviceBuffer<T> y = poisoned<T>(n);
  DeviceBuffer<T> dx = poisoned<T>(n);
  DeviceBuffer<float> mean = poisoned<float>(rows);
  DeviceBuffer<float> rstd = poisoned<float>(rows);

  LayerNormParams forward{x.data() + offset, w.data() + offset, b.data() + offset, nullptr, y.data() + offset,
                          mean.data(), rstd.data(), rows, cols, 1e-5f, dtype_of<T>()};
  launch_layernorm_forward(forward, nullptr);
  LayerNormParams backward{x.data() + offset, w.data() + offset, nullptr, dy.data() + offset, dx.data() + offset,
                           mean.data(), rstd.data(), rows, cols, 1e-5f, dtype_of<T>()};
  launch_layernorm_backward(backward, nullptr);

  const std::vector<float> xf = widened(x.data() + offset, rows * cols);
  const std::vector<float> wf = widened(w.data() + offset, cols);
  const std::vector<float> bf = widened(b.data() + offset, cols);
  const std::vector<float> dyf = widened(dy.data() + offset, rows * cols);
  std::vector<float> y_expected(rows * cols), mean_expected(rows), rstd_expected(rows), dx_expected(rows * cols);
  layernorm_forward_reference<float>(xf.data(), wf.data(), bf.data(), y_expected.data(), mean_expected.data(),
                                     rstd_expected.data(), rows, cols, 1e-5f);
  layernorm_backward_reference<float>(dyf.data(), xf.data(), wf.data(), mean_expected.data(), rstd_expected.data(),
                                      dx_expected.data(), rows, cols);
  // y = (x - mean) rstd w + b cancels near zero where b ~ -(x - mean) rstd w: judged against its scale.
  EXPECT_LT(max_error_relative_to_scale(widened(y.data() + offset, rows * cols), y_expected), tolerance<T>());
  EXPECT_LT(max_error_relative_to_scale(mean, mean_expected), 1e-5);
  EXPECT_LT(max_relative_error(rstd, rstd_expected), 1e-5);
  EXPECT_LT(max_error_relative_to_scale(widened(dx.data() + offset, rows * cols), dx_expected), tolerance<T>());

  // The parameters' gradients summed in the same pass, where the rows fit registers: over one
  // segment, the count the torch layer asks for, one with an empty last segment, a row per segment.
  if (layernorm_backward_parameter_segments(backward, /*multiprocessors=*/0) == 0) return;
  std::vector<float> dw_expected(cols), db_expected(cols);
  norm_parameter_grad_reference<float>(dyf.data(), xf.data(), widened(mean).data(), widened(rstd).data(),
                                       dw_expected.data(), db_expected.data(), rows, cols);
  for (std::int64_t segments : {std::int64_t{1}, layernorm_backward_parameter_segments(backward, 0), rows - 1, rows}) {
    if (segments < 1) continue;
    SCOPED_TRACE(std::to_string(segments) + " parameter segments");
    DeviceBuffer<T> dx_summing = poisoned<T>(n);
    DeviceBuffer<float> partials = poisoned<float>(2 * segments * cols);
    DeviceBuffer<float> dw = poisoned<float>(cols);
    DeviceBuffer<float> db = poisoned<float>(cols);
    LayerNormParams summing = backward;
    summing.output = dx_summing.data() + offset;
    summing.grad_weight = dw.data();
    summing.grad_bias = db.data();
    summing.parameter_partials = partials.data();
    summing.parameter_segments = segments;
    launch_layernorm_backward(summing, nullptr);
    EXPECT_LT(max_error_relative_to_scale(widened(dx_summing.data() + offset, rows * cols), dx_expected),
              tolerance<T>());
    EXPECT_LT(max_error_relative_to_scale(widened(dw), dw_expected), 1e-5);
    EXPECT_LT(max_error_relative_to_scale(widened(db), db_expected), 1e-5);
  }
}

// The parameter-segment counts a backward pass of `p` is checked with: 0 (the weight's and bias's
// gradients summed apart), and the most its pass sums them over, where it can.
std::vector<std::int64_t> segment_counts_for(const LayerNormParams& p) {
  std::vector<std::int64_t> counts{0};
  if (const std::int64_t most = layernorm_backward_parameter_segments(p, 0); most > 0) counts.push_back(most);
  return counts;
}

// What one backward launch of `p` writes into poisoned buffers of n elements (dx in T, `offset` in):
// dx's n - offset elements, then dw and db where `segments` > 0 sums them in the pass.
template <typename T>
std::vector<std::vector<float>> backward_gradients(LayerNormParams p, std::int64_t segments, std::size_t n,
                                                   std::size_t offset) {
  DeviceBuffer<T> dx = poisoned<T>(n);
  DeviceBuffer<float> partials = poisoned<float>(2 * std::max<std::int64_t>(segments, 1) * p.cols);
  DeviceBuffer<float> dw = poisoned<float>(p.cols), db = poisoned<float>(p.cols);
  p.output = dx.data() + offset;
  if (segments > 0) {
    p.grad_weight = dw.data();
    p.grad_bias = db.data();
    p.parameter_partials = partials.data();
    p.parameter_segments = segments;
  }
  launch_layernorm_backward(p, nullptr);
  std::vector<std::vector<float>> gradients{widened(dx.data() + offset, n - offset)};
  if (segments > 0) {
    gradients.push_back(widened(dw));
    gradients.push_back(widened(db));
  }
  return gradients;
}

// fp32 x with y and dy in bf16 (LayerNormParams::bf16_output): y is the fp32 kernel's y rounded,
// and dx, dw and db are the fp32 kernel's on dy widened, bit for bit (Note [A norm writes its
// product's operand]). `offset` shifts x and the parameters; dy and y stay aligned to 8 bytes.
void check_bf16_output(std::int64_t rows, std::int64_t cols, std::int64_t offset) {
  SCOPED_TRACE(case_name<float>(rows, cols, offset) + ", bf16 output");
  const std::size_t n = rows * cols;
  const DeviceBuffer<float> x = random_values<float>(n + offset, cols, 3.0f);
  const DeviceBuffer<float> w = random_values<float>(cols + offset, cols + 1);
  const DeviceBuffer<float> b = random_values<float>(cols + offset, cols + 2);
  const DeviceBuffer<__nv_bfloat16> dy = random_values<__nv_bfloat16>(n, cols + 3);
  DeviceBuffer<float> dy_widened(n);
  for (std::size_t i = 0; i < n; ++i) dy_widened[i] = widen(dy.data()[i]);
  DeviceBuffer<float> y = poisoned<float>(n), mean = poisoned<float>(rows), rstd = poisoned<float>(rows);
  DeviceBuffer<__nv_bfloat16> y_bf16 = poisoned<__nv_bfloat16>(n);
  DeviceBuffer<float> mean_bf16 = poisoned<float>(rows), rstd_bf16 = poisoned<float>(rows);

  LayerNormParams forward{x.data() + offset, w.data() + offset, b.data() + offset, nullptr, y.data(),
                          mean.data(), rstd.data(), rows, cols, 1e-5f, DType::kFloat32};
  launch_layernorm_forward(forward, nullptr);
  LayerNormParams forward_bf16 = forward;
  forward_bf16.output = y_bf16.data();
  forward_bf16.mean = mean_bf16.data();
  forward_bf16.rstd = rstd_bf16.data();
  forward_bf16.bf16_output = true;
  launch_layernorm_forward(forward_bf16, nullptr);
  std::vector<float> y_rounded(n);
  for (std::size_t i = 0; i < n; ++i) y_rounded[i] = widen(narrow<__nv_bfloat16>(y[i]));
  EXPECT_EQ(widened(y_bf16), y_rounded);
  EXPECT_EQ(widened(mean_bf16), widened(mean));
  EXPECT_EQ(widened(rstd_bf16), widened(rstd));

  // The backward pass, with the weight's and bias's gradients apart (0 segments) and summed in it.
  LayerNormParams backward{x.data() + offset, w.data() + offset, nullptr, dy_widened.data(), nullptr,
                           mean.data(), rstd.data(), rows, cols, 1e-5f, DType::kFloat32};
  for (std::int64_t segments : segment_counts_for(backward)) {
    SCOPED_TRACE(std::to_string(segments) + " parameter segments");
    LayerNormParams bf16_dy = backward;
    bf16_dy.grad_output = dy.data();
    bf16_dy.bf16_output = true;
    if (segments > 0) {
      ASSERT_EQ(layernorm_backward_parameter_segments(bf16_dy, 0), segments);
    }
    EXPECT_EQ(backward_gradients<float>(bf16_dy, segments, n, 0), backward_gradients<float>(backward, segments, n, 0));
  }
}

// The residual add in the kernels (LayerNormParams::residual, grad_sum), x in T, y in O and the
// residual in R (O's dtype, or bf16 beside fp32 x and y: bf16_residual): the sum
// is x + r rounded to T, y and the statistics are the plain kernel's on that sum, and dx (and dw, db)
// the plain kernel's with the sum's other gradient ds added to dx after it is rounded, bit for bit
// (Note [The residual add in the norm]). `offset` shifts every buffer, so both runs take the
// element-wise path or neither does.
template <typename T, typename O, typename R = O>
void check_residual(std::int64_t rows, std::int64_t cols, std::int64_t offset) {
  SCOPED_TRACE(case_name<T>(rows, cols, offset) + " to " + dtype_name<O>() + ", residual " + dtype_name<R>());
  const std::size_t n = rows * cols + offset;
  const std::size_t elements = rows * cols;
  const DeviceBuffer<T> x = random_values<T>(n, cols, 3.0f);
  const DeviceBuffer<R> r = random_values<R>(n, cols + 4);
  const DeviceBuffer<T> w = random_values<T>(cols + offset, cols + 1);
  const DeviceBuffer<T> b = random_values<T>(cols + offset, cols + 2);
  const DeviceBuffer<O> dy = random_values<O>(n, cols + 3);
  const DeviceBuffer<T> ds = random_values<T>(n, cols + 5);
  DeviceBuffer<T> sum_apart(n);
  for (std::size_t i = 0; i < n; ++i) sum_apart[i] = narrow<T>(widen(x.data()[i]) + widen(r.data()[i]));

  // The forward pass: the add apart, then the plain kernel; the kernel with the residual.
  struct Forward {
    DeviceBuffer<O> y;
    DeviceBuffer<T> sum;
    DeviceBuffer<float> mean, rstd;
  };
  const auto forward = [&](bool residual) {
    Forward out{poisoned<O>(n), poisoned<T>(n), poisoned<float>(rows), poisoned<float>(rows)};
    LayerNormParams p{(residual ? x : sum_apart).data() + offset, w.data() + offset, b.data() + offset, nullptr,
                      out.y.data() + offset, out.mean.data(), out.rstd.data(), rows, cols, 1e-5f, dtype_of<T>()};
    p.bf16_output = !std::is_same_v<T, O>;
    if (residual) {
      p.residual = r.data() + offset;
      p.sum = out.sum.data() + offset;
      p.bf16_residual = !std::is_same_v<O, R>;
    }
    launch_layernorm_forward(p, nullptr);
    return out;
  };
  Forward apart = forward(false);
  const Forward fused = forward(true);
  EXPECT_EQ(widened(fused.sum.data() + offset, elements), widened(sum_apart.data() + offset, elements));
  EXPECT_EQ(widened(fused.y.data() + offset, elements), widened(apart.y.data() + offset, elements));
  EXPECT_EQ(widened(fused.mean), widened(apart.mean));
  EXPECT_EQ(widened(fused.rstd), widened(apart.rstd));

  // The backward pass on the sum, with the parameters' gradients apart (0 segments) and summed in it.
  LayerNormParams backward{sum_apart.data() + offset, w.data() + offset, nullptr, dy.data() + offset, nullptr,
                           apart.mean.data(), apart.rstd.data(), rows, cols, 1e-5f, dtype_of<T>()};
  backward.bf16_output = !std::is_same_v<T, O>;
  for (std::int64_t segments : segment_counts_for(backward)) {
    SCOPED_TRACE(std::to_string(segments) + " parameter segments");
    std::vector<std::vector<float>> expected = backward_gradients<T>(backward, segments, n, offset);
    std::vector<float>& dx_plus_ds = expected[0];
    for (std::size_t i = 0; i < elements; ++i) {
      dx_plus_ds[i] = widen(narrow<T>(dx_plus_ds[i] + widen(ds.data()[offset + i])));
    }
    LayerNormParams with_grad_sum = backward;
    with_grad_sum.grad_sum = ds.data() + offset;
    EXPECT_EQ(backward_gradients<T>(with_grad_sum, segments, n, offset), expected);
  }
}

TEST_P(LayerNormEmulated, MatchesReference) {
  for (auto [rows, cols, offset] :
       {std::tuple{3, 8, 0}, {2, 37, 0}, {3, 768, 0}, {9, 768, 0}, {2, 4096, 0}, {2, 8200, 0}, {2, 32776, 0},
        {3, 100, 1}}) {
    check<float>(rows, cols, offset);
    check<__nv_bfloat16>(rows, cols, offset);
  }
}

// Rows far from zero (1,000 + values in [-1, 1]): the per-thread moments merged in one reduction
// (Note [A row's moments in one reduction]) keep the variance as the two-pass sum does, where
// E[x^2] - E[x]^2 in fp32 would lose it to cancellation. Rows in registers, and a looping row.
TEST_P(LayerNormEmulated, RowsFarFromZeroKeepTheirVariance) {
  for (auto [rows, cols] : {std::tuple{3, 768}, {2, 4096}, {2, 8200}}) {
    SCOPED_TRACE(std::to_string(rows) + "x" + std::to_string(cols));
    const std::size_t n = rows * cols;
    DeviceBuffer<float> x = random_values<float>(n, cols);
    for (float& v : x) v += 1000.0f;
    const DeviceBuffer<float> w = filled(cols, 1.0f);
    const DeviceBuffer<float> b = filled(cols, 0.0f);
    DeviceBuffer<float> y = poisoned<float>(n);
    DeviceBuffer<float> mean = poisoned<float>(rows);
    DeviceBuffer<float> rstd = poisoned<float>(rows);
    launch_layernorm_forward({x.data(), w.data(), b.data(), nullptr, y.data(), mean.data(), rstd.data(), rows, cols,
                              1e-5f, DType::kFloat32},
                             nullptr);
    const std::vector<double> xd(x.begin(), x.end());
    const std::vector<double> wd(cols, 1.0), bd(cols, 0.0);
    std::vector<double> y_expected(n), mean_expected(rows), rstd_expected(rows);
    layernorm_forward_reference<double>(xd.data(), wd.data(), bd.data(), y_expected.data(), mean_expected.data(),
                                        rstd_expected.data(), rows, cols, 1e-5);
    for (std::int64_t r = 0; r < rows; ++r) {
      EXPECT_NEAR(rstd[r], rstd_expected[r], 1e-5 * rstd_expected[r]) << "row " << r;
      EXPECT_NEAR(mean[r], mean_expected[r], 1e-6 * mean_expected[r]) << "row " << r;
    }
  }
}

TEST_P(LayerNormEmulated, Bf16OutputIsTheFp32OutputRounded) {
  // Rows in registers (summing 1 or all segments), a looping row, element-wise rows.
  for (auto [rows, cols, offset] : {std::tuple{9, 768, 0}, {2, 8200, 0}, {3, 37, 0}, {3, 100, 1}}) {
    check_bf16_output(rows, cols, offset);
  }
}

TEST_P(LayerNormEmulated, ResidualAddInTheKernelIsTheAddApart) {
  // Rows in registers (summing 1 or all segments), looping rows (fp32, then bf16), element-wise rows.
  for (auto [rows, cols, offset] :
       {std::tuple{9, 768, 0}, {3, 37, 0}, {3, 100, 1}, {2, 8200, 0}, {2, 16392, 0}}) {
    check_residual<float, float>(rows, cols, offset);
    check_residual<float, __nv_bfloat16>(rows, cols, offset);
    check_residual<float, float, __nv_bfloat16>(rows, cols, offset);
    check_residual<__nv_bfloat16, __nv_bfloat16>(rows, cols, offset);
  }
}

ALBION_EMULATED_SCHEDULES(LayerNormEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
