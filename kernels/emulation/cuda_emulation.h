// File: kernels/emulation/cuda_emulation.h
// Runs our CUDA kernels on the CPU, so machines without a GPU (every CI machine) execute the
// kernels' own code: index arithmetic, tails, 16-byte packs, block reductions, warp shuffles,
// shared memory, multi-launch pipelines, launch limits. It is force-included (-include) into each
// .cu file after translate_launches.py has rewritten `<<<...>>>` launches as calls to launch().
//
// What it models: every CUDA thread is a fiber; a block's fibers run on one OS thread and switch
// only at __syncthreads and warp shuffles, in an order the test chooses (forward, reverse,
// shuffled), so code that communicates through shared memory without a barrier, or relies on a
// warp running in lockstep, gives different results under different orders. The blocks of a
// thread-block cluster take turns the same way, switching at cluster barriers too, and read each
// other's shared memory (map_shared_rank) as it stands at that moment. Barriers that not
// every live thread reaches, full-mask shuffles in partial warps and invalid launch
// configurations are reported as errors, where a GPU would hang or be undefined. The translated
// kernels are built with UBSan (kernels/emulation/CMakeLists.txt): a 16-byte pack at a misaligned
// address, an index past a fixed-size (shared) array or a signed overflow stops the process.
// A kernel that touches memory past the end of a test's buffer (tests put a guard page there)
// dies naming the kernel, block and thread. Each block finds its shared memory filled with 0xFF
// bytes (NaN, -1), so reading a slot no thread of the block wrote shows, as GPU garbage would not
// reliably. Launches are counted per kernel (launch_counts.h).
// What it does not model: timing, occupancy, the memory model between blocks, fast-math
// intrinsics' last bits (__expf rounds its argument as the GPU does, then is exact), and fused
// multiply-adds the GPU compiler forms.
// A lent GPU still has the last word: tests labelled gpu compare the real kernels.
#pragma once

// Kernel headers that call device features the emulator provides in its own way
// (kernels/common/cluster.cuh) test this.
#define ALBION_CUDA_EMULATION 1

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include "kernels/emulation/schedule.h"

// CUDA's declaration specifiers (which the CUDA headers define as attributes for host compilers):
// device functions become host functions. `__shared__` variables become per-OS-thread statics:
// all fibers of a block run on one OS thread and see one copy. translate_launches.py follows each
// declaration with a call to fresh_shared, so a block starts with 0xFF bytes there (a NaN, or -1),
// not the previous block's values: a read of a slot no thread of the block wrote shows up.
#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __shared__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static thread_local
#define __launch_bounds__(...)

// The built-in variables of the running fiber, set by the scheduler before it resumes a fiber.
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local dim3 blockDim;
extern thread_local dim3 gridDim;

namespace albion::emulation {

void sync_threads();
// The first thread of a block to reach a __shared__ declaration fills the array with 0xFF bytes.
void fresh_shared(void* array, std::size_t bytes);
// One step of a full-warp shuffle: publishes `bytes` of `value`, returns lane (lane ^ lane_mask)'s.
void shuffle_xor(unsigned mask, const void* value, void* result, std::size_t bytes, int lane_mask, int width);

// Runs `body` as every thread of every block, in clusters of `cluster` blocks along x (1: no
// clusters); launch errors become cudaGetLastError's result.
void run_grid(const char* kernel, dim3 grid, dim3 block, std::size_t dynamic_shared_bytes, unsigned cluster,
              const std::function<void()>& body);
cudaError_t get_last_error();

// Thread-block clusters (kernels/common/cluster.cuh calls these where it is built for the
// emulator). The blocks of a cluster run together, their threads taking turns as one block's do,
// each block with its own values of the __shared__ arrays; the cluster barrier waits for every
// thread of the cluster that has not returned.
unsigned cluster_rank();
void cluster_sync();
// Where rank's block holds the __shared__ value at `address` (an address in the caller's block):
// valid until the caller's next barrier or shuffle, where the blocks may take turns.
void* cluster_shared(void* address, unsigned rank);

// kernel<<<grid, block, shared, stream>>>(args) becomes
// launch("kernel", kernel, grid, block, shared, stream)(args).
template <typename... Params>
auto launch(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, std::size_t dynamic_shared_bytes = 0,
            cudaStream_t /*stream: work runs at once, in launch order*/ = nullptr) {
  return [=](auto&&... args) {
    // Converted once to the kernel's parameter types, as CUDA copies arguments at launch.
    const std::tuple<std::decay_t<Params>...> params(std::forward<decltype(args)>(args)...);
    run_grid(name, grid, block, dynamic_shared_bytes, 1, [&] { std::apply(kernel, params); });
  };
}

// A launch in clusters of `cluster` blocks along x, as cudaLaunchKernelEx with a cluster dimension.
template <typename... Params>
auto launch_clustered(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, unsigned cluster) {
  return [=](auto&&... args) {
    const std::tuple<std::decay_t<Params>...> params(std::forward<decltype(args)>(args)...);
    run_grid(name, grid, block, 0, cluster, [&] { std::apply(kernel, params); });
  };
}

}  // namespace albion::emulation

// The scheduler switches fibers inside these calls; the empty asm tells the compiler that shared
// memory may have changed there, even where it could prove the opaque call cannot reach it.
inline void __syncthreads() {
  albion::emulation::sync_threads();
  asm volatile("" ::: "memory");
}

template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move 4- or 8-byte values");
  T result;
  albion::emulation::shuffle_xor(mask, &value, &result, sizeof(T), lane_mask, width);
  asm volatile("" ::: "memory");
  return result;
}

// cudaGetLastError reports the emulator's launch errors; the runtime library is never asked.
#define cudaGetLastError() ::albion::emulation::get_last_error()

// Device intrinsics as their IEEE host equivalents. The `_rn` forms round each operation, as
// these do when the emulated translation units are built with -ffp-contract=off.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
// The GPU's __expf is ex2.approx(a * log2 e): its error is mostly the rounding of that product,
// which grows with |a|; modelled here so tolerances hold for the kernel the GPU runs.
inline float __expf(float a) { return std::exp2(__fmul_rn(a, 1.4426950408889634f)); }
// The GPU's __fdividef is a * rcp.approx(b), which gives 0 for 2^126 < |b| (rcp flushes there).
inline float __fdividef(float a, float b) {
  return std::abs(b) > 0x1p126f ? std::copysign(0.0f, a) * std::copysign(1.0f, b) : a / b;
}
inline float rsqrtf(float a) { return 1.0f / std::sqrt(a); }
inline float __uint_as_float(unsigned bits) { return std::bit_cast<float>(bits); }
// CUDA's device overloads of min, max and the classification functions, found unqualified.
using std::isfinite;
using std::isinf;
using std::isnan;
template <typename T>
T min(T a, T b) { return b < a ? b : a; }
template <typename T>
T max(T a, T b) { return a < b ? b : a; }
