// File: tests/kernels/emulated/swiglu_emulated_test.cpp
// kernels/swiglu/swiglu.cu on the CPU emulator against swiglu_ref.cpp: packed bodies with their
// scalar tails, misaligned pointers, one element.
#include <cstdint>
#include <tuple>

#include "kernels/swiglu/swiglu.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class SwiGluEmulated : public EmulatedKernel {};

template <typename T>
void check(std::int64_t numel, std::int64_t offset) {
  SCOPED_TRACE(dtype_name<T>() + " numel " + std::to_string(numel) + " offset " + std::to_string(offset));
  const std::size_t n = numel + offset;
  const DeviceBuffer<T> gate = random_values<T>(n, numel, 3.0f);
  const DeviceBuffer<T> up = random_values<T>(n, numel + 1);
  const DeviceBuffer<T> dout = random_values<T>(n, numel + 2);
  DeviceBuffer<T> out = poisoned<T>(n), grad_gate = poisoned<T>(n), grad_up = poisoned<T>(n);

  launch_swiglu_forward({gate.data() + offset, up.data() + offset, out.data() + offset, numel, dtype_of<T>()}, nullptr);
  launch_swiglu_backward({dout.data() + offset, gate.data() + offset, up.data() + offset, grad_gate.data() + offset,
                          grad_up.data() + offset, numel, dtype_of<T>()},
                         nullptr);

  const std::vector<float> g = widened(gate.data() + offset, numel), u = widened(up.data() + offset, numel);
  const std::vector<float> d = widened(dout.data() + offset, numel);
  std::vector<float> out_expected(numel), gate_expected(numel), up_expected(numel);
  swiglu_forward_reference<float>(g.data(), u.data(), out_expected.data(), numel);
  swiglu_backward_reference<float>(d.data(), g.data(), u.data(), gate_expected.data(), up_expected.data(), numel);
  EXPECT_LT(max_relative_error(widened(out.data() + offset, numel), out_expected), tolerance<T>());
  // silu'(g) crosses zero near g = -1.28: judged against the gradient's scale.
  EXPECT_LT(max_error_relative_to_scale(widened(grad_gate.data() + offset, numel), gate_expected), tolerance<T>());
  EXPECT_LT(max_relative_error(widened(grad_up.data() + offset, numel), up_expected), tolerance<T>());
}

TEST_P(SwiGluEmulated, MatchesReference) {
  for (auto [numel, offset] : {std::tuple{1, 0}, {8, 0}, {1003, 0}, {4099, 0}, {1000, 1}, {70000, 0}}) {
    check<float>(numel, offset);
    check<__nv_bfloat16>(numel, offset);
  }
}

ALBION_EMULATED_SCHEDULES(SwiGluEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
