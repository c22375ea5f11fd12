// File: tests/kernels/emulated/fused_adamw_emulated_test.cpp
// kernels/adamw/fused_adamw.cu on the CPU emulator against fused_adamw_ref.cpp: several tensors in
// one launch, one spanning chunks with a tail, one misaligned, decayed and not, with and without
// the bf16 copy; and with a gradient scale, against the reference on gradients scaled beforehand.
// Both round every operation on its own (the kernel's __f*_rn, the reference's -ffp-contract=off),
// so the results must agree bit for bit.
#include <cstdint>
#include <cstring>

#include "kernels/adamw/fused_adamw.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class FusedAdamWEmulated : public EmulatedKernel {};

struct State {
  DeviceBuffer<float> parameter, gradient, exp_avg, exp_avg_sq;
  DeviceBuffer<std::uint16_t> copy;

  State(std::int64_t n, std::uint64_t seed)
      : parameter(random_values<float>(n, seed)),
        gradient(random_values<float>(n, seed + 1, 0.1f)),
        exp_avg(random_values<float>(n, seed + 2, 0.01f)),
        exp_avg_sq(random_values<float>(n, seed + 3, 0.001f)),
        copy(filled<std::uint16_t>(n, 0xffff)) {
    for (float& v : exp_avg_sq) v = std::abs(v);
  }
  // From element `offset` on: 1 makes every pointer miss 16-byte alignment (single elements then).
  AdamWTensor tensor(bool decayed, bool with_copy, std::int64_t offset) {
    return {parameter.data() + offset,
            gradient.data() + offset,
            exp_avg.data() + offset,
            exp_avg_sq.data() + offset,
            with_copy ? copy.data() + offset : nullptr,
            static_cast<std::int64_t>(parameter.size()) - offset,
            decayed};
  }
};

template <typename T>
bool same_bits(const DeviceBuffer<T>& a, const DeviceBuffer<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// The kernel with `hyper` against the reference with `reference_hyper`, on the same tensors but for
// the reference's gradients multiplied by `reference_gradient_factor` first.
void expect_kernel_matches_reference(const AdamWHyper& hyper, const AdamWHyper& reference_hyper,
                                     float reference_gradient_factor) {
  // The last tensor is used from its second element on: misaligned.
  const std::vector<std::int64_t> sizes = {1, 7, 65536 + 1001, 4096, 1004};
  std::vector<State> kernel_states, reference_states;
  kernel_states.reserve(sizes.size());
  reference_states.reserve(sizes.size());
  std::vector<AdamWTensor> kernel_tensors, reference_tensors;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    kernel_states.emplace_back(sizes[i], 10 * i);
    reference_states.emplace_back(sizes[i], 10 * i);
    for (float& g : reference_states.back().gradient) g *= reference_gradient_factor;
  }
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const bool decayed = i % 2 == 0, with_copy = i != 1;
    const std::int64_t offset = i == sizes.size() - 1 ? 1 : 0;
    kernel_tensors.push_back(kernel_states[i].tensor(decayed, with_copy, offset));
    reference_tensors.push_back(reference_states[i].tensor(decayed, with_copy, offset));
  }
  const std::vector<std::byte> table = fused_adamw_chunk_table(kernel_tensors);
  launch_fused_adamw(table.data(), table.size(), hyper, nullptr);
  fused_adamw_reference(reference_tensors, reference_hyper);

  for (std::size_t i = 0; i < sizes.size(); ++i) {
    SCOPED_TRACE("tensor " + std::to_string(i) + " of " + std::to_string(sizes[i]) + " elements");
    EXPECT_TRUE(same_bits(kernel_states[i].parameter, reference_states[i].parameter));
    EXPECT_TRUE(same_bits(kernel_states[i].exp_avg, reference_states[i].exp_avg));
    EXPECT_TRUE(same_bits(kernel_states[i].exp_avg_sq, reference_states[i].exp_avg_sq));
    EXPECT_TRUE(same_bits(kernel_states[i].copy, reference_states[i].copy));
  }
}

constexpr AdamWHyper kHyper{3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f - 0.9f * 0.9f, 1.0f - 0.95f * 0.95f};

TEST_P(FusedAdamWEmulated, MatchesReferenceBitForBit) { expect_kernel_matches_reference(kHyper, kHyper, 1.0f); }

// A clip factor (optim::clip_factor) applied in the kernel is the clip applied to the gradients.
TEST_P(FusedAdamWEmulated, ScalesGradientsAsIfScaledBefore) {
  const float factor = 0.3f;
  AdamWHyper scaled = kHyper;
  scaled.gradient_scale = &factor;
  expect_kernel_matches_reference(scaled, kHyper, factor);
  expect_kernel_matches_reference(scaled, scaled, 1.0f);  // the reference scales the same way
}

ALBION_EMULATED_SCHEDULES(FusedAdamWEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
