// File: tests/kernels/emulated/rmsnorm_emulated_test.cpp
// kernels/rmsnorm/rmsnorm.cu run on the CPU emulator against rmsnorm_ref.cpp: 16-byte packs,
// element-wise rows (odd lengths, misaligned pointers), one to 1024 threads per row, rows held in
// registers and rows too long for them (32,776).
#include <cstdint>

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
}

TEST_P(RmsNormEmulated, MatchesReference) {
  for (auto [rows, cols, offset] :
       {std::tuple{3, 8, 0}, {2, 37, 0}, {3, 1000, 0}, {2, 4096, 0}, {2, 8200, 0}, {2, 32776, 0}, {3, 64, 1}}) {
    check<float>(rows, cols, offset);
    check<__nv_bfloat16>(rows, cols, offset);
  }
}

ALBION_EMULATED_SCHEDULES(RmsNormEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
