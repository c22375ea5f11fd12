// File: tests/kernels/emulated/rope_emulated_test.cpp
// kernels/rope/rope.cu on the CPU emulator against rope_ref.cpp: in place and out of place,
// forward and backward rotation, positions beyond the grid (the block-stride loop).
#include <cstdint>
#include <tuple>

#include "kernels/rope/rope.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class RopeEmulated : public EmulatedKernel {};

template <typename T>
void check(std::int64_t batch, std::int64_t seq, std::int64_t heads, std::int64_t head_dim, bool in_place,
           float direction) {
  SCOPED_TRACE(dtype_name<T>() + " " + std::to_string(batch) + "x" + std::to_string(seq) + "x" +
               std::to_string(heads) + "x" + std::to_string(head_dim) + (in_place ? " in place" : "") +
               " direction " + std::to_string(direction));
  const std::size_t n = batch * seq * heads * head_dim;
  const DeviceBuffer<T> x = random_values<T>(n, n);
  // Tables longer than seq, as the runtime's cache for the longest sequence.
  const DeviceBuffer<float> cos = random_values<float>((seq + 3) * head_dim, n + 1);
  const DeviceBuffer<float> sin = random_values<float>((seq + 3) * head_dim, n + 2);
  DeviceBuffer<T> out = in_place ? copied(x) : poisoned<T>(n);

  RopeParams params{in_place ? out.data() : x.data(), out.data(), cos.data(), sin.data(), batch, seq, heads,
                    head_dim, direction, dtype_of<T>()};
  launch_rope(params, nullptr);

  const std::vector<float> xf = widened(x);
  std::vector<float> expected(n);
  rope_reference<float>(xf.data(), expected.data(), cos.data(), sin.data(), batch, seq, heads, head_dim, direction);
  // Rotations cancel to near zero in places: judged against the output's scale.
  EXPECT_LT(max_error_relative_to_scale(widened(out), expected), tolerance<T>());
}

TEST_P(RopeEmulated, MatchesReference) {
  for (auto [batch, seq, heads, head_dim] : {std::tuple{1, 1, 1, 2}, {2, 5, 3, 6}, {2, 9, 4, 64}, {1, 3, 2, 128}}) {
    for (bool in_place : {false, true}) {
      for (float direction : {1.0f, -1.0f}) {
        check<float>(batch, seq, heads, head_dim, in_place, direction);
        check<__nv_bfloat16>(batch, seq, heads, head_dim, in_place, direction);
      }
    }
  }
}

ALBION_EMULATED_SCHEDULES(RopeEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
