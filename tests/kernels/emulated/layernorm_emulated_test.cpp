// File: tests/kernels/emulated/layernorm_emulated_test.cpp
// kernels/layernorm/layernorm.cu run on the CPU emulator against layernorm_ref.cpp: rows held in
// registers, rows too long for them (32,776), element-wise rows (odd lengths, misaligned pointers),
// the weight's and the bias's gradients summed in the backward pass over row segments.
#include <cstdint>
#include <string>
#include <tuple>
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

TEST_P(LayerNormEmulated, MatchesReference) {
  for (auto [rows, cols, offset] :
       {std::tuple{3, 8, 0}, {2, 37, 0}, {3, 768, 0}, {9, 768, 0}, {2, 4096, 0}, {2, 8200, 0}, {2, 32776, 0},
        {3, 100, 1}}) {
    check<float>(rows, cols, offset);
    check<__nv_bfloat16>(rows, cols, offset);
  }
}

ALBION_EMULATED_SCHEDULES(LayerNormEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
