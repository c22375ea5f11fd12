// File: tests/kernels/emulated/rope_emulated_test.cpp
// kernels/rope/rope.cu on the CPU emulator against rope_ref.cpp: in place and out of place,
// forward and backward rotation, packs and single pairs (odd halves, misaligned pointers).
#include <cstdint>
#include <tuple>

#include "kernels/rope/rope.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class RopeEmulated : public EmulatedKernel {};

// `offset` elements into x and out: 1 makes them miss 16-byte alignment (single pairs then).
template <typename T>
void check(std::int64_t batch, std::int64_t seq, std::int64_t heads, std::int64_t head_dim, std::int64_t offset,
           bool in_place, float direction) {
  SCOPED_TRACE(dtype_name<T>() + " " + std::to_string(batch) + "x" + std::to_string(seq) + "x" +
               std::to_string(heads) + "x" + std::to_string(head_dim) + " offset " + std::to_string(offset) +
               (in_place ? " in place" : "") + " direction " + std::to_string(direction));
  const std::size_t n = batch * seq * heads * head_dim;
  const DeviceBuffer<T> x = random_values<T>(n + offset, n);
  // Tables longer than seq, as the runtime's cache for the longest sequence.
  const DeviceBuffer<float> cos = random_values<float>((seq + 3) * head_dim, n + 1);
  const DeviceBuffer<float> sin = random_values<float>((seq + 3) * head_dim, n + 2);
  DeviceBuffer<T> out = in_place ? copied(x) : poisoned<T>(n + offset);

  RopeParams params{(in_place ? out.data() : x.data()) + offset, out.data() + offset, cos.data(), sin.data(),
                    batch, seq, heads, head_dim, direction, dtype_of<T>()};
  launch_rope(params, nullptr);

  const std::vector<float> xf = widened(x.data() + offset, n);
  std::vector<float> expected(n);
  rope_reference<float>(xf.data(), expected.data(), cos.data(), sin.data(), batch, seq, heads, head_dim, direction);
  // Rotations cancel to near zero in places: judged against the output's scale.
  EXPECT_LT(max_error_relative_to_scale(widened(out.data() + offset, n), expected), tolerance<T>());
}

TEST_P(RopeEmulated, MatchesReference) {
  // Half a head of 1 or 3: single pairs; 8 (fp32 packs only), 32 and 64: packs.
  for (auto [batch, seq, heads, head_dim, offset] : {std::tuple{1, 1, 1, 2, 0}, {2, 5, 3, 6, 0}, {1, 4, 3, 16, 0},
                                                     {2, 9, 4, 64, 0}, {1, 3, 2, 128, 0}, {1, 3, 2, 128, 1}}) {
    for (bool in_place : {false, true}) {
      for (float direction : {1.0f, -1.0f}) {
        check<float>(batch, seq, heads, head_dim, offset, in_place, direction);
        check<__nv_bfloat16>(batch, seq, heads, head_dim, offset, in_place, direction);
      }
    }
  }
}

ALBION_EMULATED_SCHEDULES(RopeEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
