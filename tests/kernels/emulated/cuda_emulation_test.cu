// File: tests/kernels/emulated/cuda_emulation_test.cu
// The CPU emulator itself (kernels/emulation/), on small kernels written to exercise it: built-in
// variables, barriers, shuffles, launch limits and counts, shared memory that each block finds
// poisoned, thread-block clusters (each block its own shared memory, read by the others after the
// cluster barrier), and that the faults it claims to report (a barrier not every thread reaches, a
// shuffle in a partial warp, a missing barrier, an access past the end of a buffer) are reported.
// Built like our kernels: translated by translate_launches.py, compiled against cuda_emulation.h.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cluster.cuh"
#include "kernels/emulation/launch_counts.h"
#include "kernels/emulation/schedule.h"
#include "tests/kernels/emulated/device_buffer.h"

namespace albion::emulation {
namespace {

__global__ void record_coordinates(int* visits, unsigned* dims) {
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  visits[block * blockDim.x * blockDim.y * blockDim.z + thread] += 1;
  if (block == 0 && thread == 0) {
    dims[0] = gridDim.x, dims[1] = gridDim.y, dims[2] = gridDim.z;
    dims[3] = blockDim.x, dims[4] = blockDim.y, dims[5] = blockDim.z;
  }
}

TEST(CudaEmulation, EveryThreadOfEveryBlockRunsOnceWithItsCoordinates) {
  std::vector<int> visits(3 * 2 * 2 * 5 * 4 * 3, 0);
  std::vector<unsigned> dims(6, 0);
  record_coordinates<<<dim3(3, 2, 2), dim3(5, 4, 3)>>>(visits.data(), dims.data());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(visits, std::vector<int>(visits.size(), 1));
  EXPECT_EQ(dims, (std::vector<unsigned>{3, 2, 2, 5, 4, 3}));
}

template <int kThreads>
__global__ void block_sums(const float* values, float* sums) {
  sums[blockIdx.x * kThreads + threadIdx.x] =
      kernels::block_sum(values[blockIdx.x * kThreads + threadIdx.x]);  // every thread gets the total
}

TEST(CudaEmulation, BlockReductionsThroughShufflesAndSharedMemory) {
  constexpr int kThreads = 1024;
  std::vector<float> values(2 * kThreads), sums(2 * kThreads, -1.0f);
  for (int i = 0; i < 2 * kThreads; ++i) values[i] = static_cast<float>(i % kThreads < 7 ? i % kThreads : 0);
  values[kThreads + 1000] = 100.0f;
  block_sums<kThreads><<<2, kThreads>>>(values.data(), sums.data());
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_EQ(sums[i], 21.0f) << "block 0, thread " << i;
    ASSERT_EQ(sums[kThreads + i], 121.0f) << "block 1, thread " << i;
  }
}

// Threads that return early stop counting at a barrier, as on the GPU.
__global__ void barrier_after_early_exit(int* out) {
  __shared__ int flag;
  if (threadIdx.x >= 40) return;
  if (threadIdx.x == 0) flag = 7;
  __syncthreads();
  out[threadIdx.x] = flag;
}

TEST(CudaEmulation, ReturnedThreadsDoNotHoldABarrier) {
  std::vector<int> out(40, 0);
  barrier_after_early_exit<<<1, 64>>>(out.data());
  EXPECT_EQ(out, std::vector<int>(40, 7));
}

// Lane 0 waits at the block barrier, the other lanes at a shuffle that needs lane 0: a GPU hangs.
__global__ void barrier_against_shuffle(int* out) {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
  }
}

TEST(CudaEmulation, ReportsADeadlockInsteadOfHanging) {
  std::vector<int> out(32);
  try {
    barrier_against_shuffle<<<1, 32>>>(out.data());
    FAIL() << "no deadlock reported";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("barrier_against_shuffle"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("deadlock: 1 threads wait at __syncthreads, 31 at a warp shuffle"),
              std::string::npos)
        << e.what();
  }
  // The emulator is usable again after a fault.
  std::vector<float> values(64, 1.0f), sums(64);
  block_sums<64><<<1, 64>>>(values.data(), sums.data());
  EXPECT_EQ(sums, std::vector<float>(64, 64.0f));
}

__global__ void shuffle_everyone(int* out) {
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

__global__ void shuffle_after_a_lane_returned(int* out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<int>(threadIdx.x), 1);
}

TEST(CudaEmulation, ShufflesExchangeWithinTheWarpAndRefuseIncompleteWarps) {
  std::vector<int> out(64, -1);
  shuffle_everyone<<<1, 64>>>(out.data());
  for (int i = 0; i < 64; ++i) ASSERT_EQ(out[i], i ^ 1);
  // 48 threads: the second warp has 16 lanes; a full-mask shuffle there is undefined on a GPU.
  EXPECT_THROW(shuffle_everyone<<<1, 48>>>(out.data()), std::runtime_error);
  EXPECT_THROW(shuffle_after_a_lane_returned<<<1, 32>>>(out.data()), std::runtime_error);
}

TEST(CudaEmulation, InvalidLaunchConfigurationsFailAsOnTheGpuAndOnlyValidOnesCount) {
  std::vector<int> out(2048, -1);
  const std::int64_t launched = albion::emulation::launches("shuffle_everyone");
  shuffle_everyone<<<1, 1025>>>(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(out[0], -1) << "an invalid launch must not run";
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "reading the error clears it";
  shuffle_everyone<<<dim3(1, 65536), 32>>>(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  shuffle_everyone<<<0, 32>>>(out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(albion::emulation::launches("shuffle_everyone"), launched) << "refused launches are not counted";
  shuffle_everyone<<<2, 32>>>(out.data());
  EXPECT_EQ(albion::emulation::launches("shuffle_everyone"), launched + 1);
}

// Each thread reads its neighbour's shared slot: correct only with the barrier.
template <bool kBarrier>
__global__ void rotate_through_shared(const int* in, int* out) {
  __shared__ int slots[64];
  slots[threadIdx.x] = in[threadIdx.x];
  if (kBarrier) __syncthreads();
  out[threadIdx.x] = slots[(threadIdx.x + 1) % 64];
}

std::vector<int> rotate(Schedule schedule, bool barrier) {
  std::vector<int> in(64), out(64, -1);
  for (int i = 0; i < 64; ++i) in[i] = 100 + i;
  set_schedule(schedule, 7);
  if (barrier) {
    rotate_through_shared<true><<<1, 64>>>(in.data(), out.data());
  } else {
    rotate_through_shared<false><<<1, 64>>>(in.data(), out.data());
  }
  set_schedule(Schedule::kForward);
  return out;
}

TEST(CudaEmulation, SchedulesExposeAMissingBarrier) {
  std::vector<int> expected(64);
  for (int i = 0; i < 64; ++i) expected[i] = 100 + (i + 1) % 64;
  for (Schedule s : {Schedule::kForward, Schedule::kReverse, Schedule::kShuffled}) {
    EXPECT_EQ(rotate(s, /*barrier=*/true), expected);
  }
  // Without the barrier, a thread reads before its neighbour wrote under some order.
  const bool forward_ok = rotate(Schedule::kForward, false) == expected;
  const bool reverse_ok = rotate(Schedule::kReverse, false) == expected;
  EXPECT_FALSE(forward_ok && reverse_ok) << "the missing barrier went unnoticed";
}

// Block 0 writes a shared slot that no other block writes; every block reads it.
__global__ void read_another_blocks_shared_slot(int* out) {
  __shared__ int slot[1];
  if (blockIdx.x == 0 && threadIdx.x == 0) slot[0] = 42;
  __syncthreads();
  if (threadIdx.x == 0) out[blockIdx.x] = slot[0];
}

TEST(CudaEmulation, EachBlockStartsWithPoisonedSharedMemory) {
  std::vector<int> out(3, 0);
  read_another_blocks_shared_slot<<<3, 32>>>(out.data());
  // A GPU gives blocks 1 and 2 garbage, never block 0's value: the emulator gives 0xFF bytes.
  EXPECT_EQ(out, (std::vector<int>{42, -1, -1}));
}

// Each block sums its values (block_sum's __shared__ array, used by the cluster's blocks in turn),
// then every block reads every block's total of its cluster from their shared memory.
template <bool kBarrier>
__global__ void cluster_totals(const float* values, float* totals, unsigned* ranks) {
  __shared__ float block_total[1];
  constexpr unsigned cluster = 4;  // as launched
  const float total = kernels::block_sum(values[blockIdx.x * blockDim.x + threadIdx.x]);
  if (threadIdx.x == 0) block_total[0] = total;
  if (kBarrier) kernels::cluster_sync();
  if (threadIdx.x == 0) {
    for (unsigned r = 0; r < cluster; ++r) totals[blockIdx.x * cluster + r] = *kernels::cluster_shared(block_total, r);
    ranks[blockIdx.x] = kernels::cluster_rank();
  }
  if (kBarrier) kernels::cluster_sync();  // no block returns while another may read its total
}

// The totals every block of 8 (clusters of 4, 64 threads) read, or nothing where the emulator
// reported a fault.
std::optional<std::vector<float>> read_cluster_totals(Schedule schedule, bool barrier, std::vector<unsigned>& ranks) {
  std::vector<float> values(8 * 64), totals(8 * 4, -1.0f);
  for (int i = 0; i < 8 * 64; ++i) values[i] = static_cast<float>(i / 64 + 1);  // block b sums to 64 (b + 1)
  ranks.assign(8, 99);
  set_schedule(schedule, 3);
  try {
    if (barrier) {
      kernels::launch_in_clusters("cluster_totals", cluster_totals<true>, 8, 64, 4, nullptr, values.data(),
                                  totals.data(), ranks.data());
    } else {
      kernels::launch_in_clusters("cluster_totals", cluster_totals<false>, 8, 64, 4, nullptr, values.data(),
                                  totals.data(), ranks.data());
    }
  } catch (const std::runtime_error&) {
    set_schedule(Schedule::kForward);
    return std::nullopt;
  }
  set_schedule(Schedule::kForward);
  return totals;
}

TEST(CudaEmulation, ClusterBlocksHaveTheirOwnSharedMemoryAndReadEachOthersAfterTheBarrier) {
  std::vector<float> expected;
  for (int b = 0; b < 8; ++b) {
    for (int r = 0; r < 4; ++r) expected.push_back(64.0f * static_cast<float>(b / 4 * 4 + r + 1));
  }
  for (Schedule s : {Schedule::kForward, Schedule::kReverse, Schedule::kShuffled}) {
    std::vector<unsigned> ranks;
    EXPECT_EQ(read_cluster_totals(s, /*barrier=*/true, ranks), expected);
    EXPECT_EQ(ranks, (std::vector<unsigned>{0, 1, 2, 3, 0, 1, 2, 3}));
  }
  // Without the cluster barrier a block reads another's total before it is written, under some
  // order: a shared array the other block has not declared yet, or its poison.
  bool unnoticed = true;
  for (Schedule s : {Schedule::kForward, Schedule::kReverse}) {
    std::vector<unsigned> ranks;
    unnoticed = unnoticed && read_cluster_totals(s, /*barrier=*/false, ranks) == expected;
  }
  EXPECT_FALSE(unnoticed) << "the missing cluster barrier went unnoticed";
}

// Thread 0 of each block waits at __syncthreads, the others at the cluster barrier: a GPU hangs.
__global__ void cluster_barrier_against_block_barrier() {
  if (threadIdx.x == 0) {
    __syncthreads();
  } else {
    kernels::cluster_sync();
  }
}

TEST(CudaEmulation, ClusterLaunchesReportDeadlocksAndRefuseClustersThatDoNotDivideTheGrid) {
  try {
    kernels::launch_in_clusters("cluster_barrier_against_block_barrier", cluster_barrier_against_block_barrier, 2,
                                32, 2, nullptr);
    FAIL() << "no deadlock reported";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cluster from block (0,0,0): deadlock: 2 threads wait at __syncthreads, "
                                         "0 at a warp shuffle, 62 at the cluster barrier"),
              std::string::npos)
        << e.what();
  }
  std::vector<float> values(6 * 64, 1.0f), totals(6 * 4, -1.0f);
  std::vector<unsigned> ranks(6);
  launch_clustered("cluster_totals", cluster_totals<true>, 6, 64, 4)(values.data(), totals.data(), ranks.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidClusterSize);
  launch_clustered("cluster_totals", cluster_totals<true>, 16, 64, 16)(values.data(), totals.data(), ranks.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidClusterSize);
  EXPECT_EQ(totals, std::vector<float>(6 * 4, -1.0f)) << "a refused launch must not run";
}

__global__ void read_one_past_the_end(const float* in, float* out, int n) {
  if (threadIdx.x == 3) out[0] = in[n];
}

TEST(CudaEmulationDeathTest, AnAccessPastABufferNamesTheKernelBlockAndThread) {
  kernels::emulated::DeviceBuffer<float> in(4), out(1);
  const auto crash_without_core = [&] {
    const rlimit no_core{0, 0};  // where cores are allowed, a crashing test would leave one behind
    setrlimit(RLIMIT_CORE, &no_core);
    read_one_past_the_end<<<1, 32>>>(in.data(), out.data(), 4);
  };
  EXPECT_DEATH(crash_without_core(),
               "read_one_past_the_end block \\(0,0,0\\) thread \\(3,0,0\\) touched address");
}

}  // namespace
}  // namespace albion::emulation
