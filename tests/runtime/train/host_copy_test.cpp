// File: tests/runtime/train/host_copy_test.cpp
// HostCopy (runtime/train/host_copy.h): the values as they were when the copy was made, in fp64,
// flattened; on a GPU (suite HostCopyCuda, label gpu), read without waiting for the device work
// queued after the copy, which tensor.item() waits for.
#include "runtime/train/host_copy.h"

#include <ATen/cuda/Sleep.h>
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "tests/support/cuda_available.h"

namespace albion::train {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(HostCopy, ReadsTheValuesAsTheyWereWhenCopied) {
  at::Tensor loss = at::full({}, 2.5, at::kDouble);
  HostCopy numbers(at::stack({loss, at::full({}, 0.75, at::kDouble)}));
  loss.fill_(7);  // after the copy: not what it holds
  EXPECT_EQ(numbers.read(), (std::vector<double>{2.5, 0.75}));
  EXPECT_EQ(numbers.read(), (std::vector<double>{2.5, 0.75}));  // read again: the same

  at::Tensor flags = at::tensor({0, 1, 3}, at::kInt).view({3, 1});
  EXPECT_EQ(HostCopy(flags).read(), (std::vector<double>{0, 1, 3}));
  EXPECT_EQ(HostCopy(at::full({}, 1.5f)).read(), (std::vector<double>{1.5}));
}

TEST(HostCopyCuda, ReadsWithoutWaitingForWorkQueuedAfter) {
  ALBION_SKIP_WITHOUT_CUDA();
  at::Tensor values = at::arange(3, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA));
  at::cuda::sleep(1000);  // loads the spinning kernel before anything is timed
  HostCopy numbers(values * 2);
  // About half a second of device work queued after the copy (10^9 cycles at H100/H200 clocks),
  // then a change to the values it copied.
  at::cuda::sleep(1'000'000'000);
  values.add_(1);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(numbers.read(), (std::vector<double>{0, 2, 4}));
  const double read_seconds = seconds_since(start);
  start = std::chrono::steady_clock::now();
  EXPECT_EQ(values.sum().item<double>(), 6.0);  // what the trainer did: waits for the spin
  const double item_seconds = seconds_since(start);
  EXPECT_LT(read_seconds, 0.1) << "item() took " << item_seconds << " s";
  EXPECT_GT(item_seconds, 0.2) << "the spin did not hold the device: the test measures nothing";
}

}  // namespace
}  // namespace albion::train
