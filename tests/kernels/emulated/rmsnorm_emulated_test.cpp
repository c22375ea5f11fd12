// File: tests/kernels/emulated/rmsnorm_emulated_test.cpp
// kernels/rmsnorm/rmsnorm.cu run on the CPU emulator against rmsnorm_ref.cpp: 16-byte packs,
// element-wise rows (odd lengths, misaligned pointers), one to 1024 threads per row, rows held in
// registers and rows too long for them (32,776), the weight's gradient summed in the backward
// pass over row segments.
#include <cstdint>
#include <string>
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

TEST_P(RmsNormEmulated, MatchesReference) {
  for (auto [rows, cols, offset] :
       {std::tuple{3, 8, 0}, {2, 37, 0}, {3, 1000, 0}, {9, 1000, 0}, {2, 4096, 0}, {2, 8200, 0}, {2, 32776, 0},
        {3, 64, 1}}) {
    check<float>(rows, cols, offset);
    check<__nv_bfloat16>(rows, cols, offset);
  }
}

ALBION_EMULATED_SCHEDULES(RmsNormEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
