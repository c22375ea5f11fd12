// File: tests/kernels/emulated/grad_norm_emulated_test.cpp
// kernels/grad_norm/grad_norm.cu (chunk partials, then one block adding them) on the CPU emulator
// against grad_norm_ref.cpp: fp32 and bf16 tensors in one launch, chunks with tails, misalignment.
#include <cstdint>

#include "kernels/grad_norm/grad_norm.cuh"
#include "tests/kernels/emulated/emulated_support.h"

namespace albion::kernels::emulated {
namespace {

class GradNormEmulated : public EmulatedKernel {};

TEST_P(GradNormEmulated, MatchesReference) {
  const DeviceBuffer<float> a = random_values<float>(65536 + 3001, 1);
  const DeviceBuffer<__nv_bfloat16> b = random_values<__nv_bfloat16>(5003, 2);
  const DeviceBuffer<float> c = random_values<float>(9, 3, 100.0f);
  const DeviceBuffer<__nv_bfloat16> d = random_values<__nv_bfloat16>(1025, 4);
  const std::vector<NormTensor> tensors = {{a.data(), static_cast<std::int64_t>(a.size()), DType::kFloat32},
                                           {b.data(), static_cast<std::int64_t>(b.size()), DType::kBFloat16},
                                           {c.data() + 1, 8, DType::kFloat32},  // misaligned
                                           {d.data() + 1, 1024, DType::kBFloat16}};
  const std::vector<std::byte> table = squared_norm_chunk_table(tensors);
  DeviceBuffer<double> partials = filled<double>(squared_norm_chunks(table.size()), std::numeric_limits<double>::quiet_NaN());
  DeviceBuffer<double> out = filled<double>(1, std::numeric_limits<double>::quiet_NaN());
  launch_squared_norm(table.data(), table.size(), partials.data(), out.data(), nullptr);
  const double expected = squared_norm_reference(tensors);
  // Chunks sum in fp32 (as the kernel documents), the total in fp64.
  EXPECT_NEAR(out[0], expected, 1e-6 * expected);
}

// More chunks than the finishing block has threads: its loop over partials takes a second lap.
// One schedule: 1,100 blocks of 512 fibers take seconds each time.
TEST(GradNormEmulatedOnce, MoreChunksThanFinishingThreads) {
  const DeviceBuffer<float> values = random_values<float>(1100, 5);
  std::vector<NormTensor> tensors;
  for (const float& v : values) tensors.push_back({&v, 1, DType::kFloat32});
  const std::vector<std::byte> table = squared_norm_chunk_table(tensors);
  ASSERT_EQ(squared_norm_chunks(table.size()), 1100);
  DeviceBuffer<double> partials = filled<double>(1100, std::numeric_limits<double>::quiet_NaN());
  DeviceBuffer<double> out = filled<double>(1, std::numeric_limits<double>::quiet_NaN());
  launch_squared_norm(table.data(), table.size(), partials.data(), out.data(), nullptr);
  const double expected = squared_norm_reference(tensors);
  EXPECT_NEAR(out[0], expected, 1e-9 * expected);
}

ALBION_EMULATED_SCHEDULES(GradNormEmulated);

}  // namespace
}  // namespace albion::kernels::emulated
