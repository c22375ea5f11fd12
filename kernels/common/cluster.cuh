// File: kernels/common/cluster.cuh
// Thread-block clusters (sm_90 and later): blocks launched together on one GPU processing
// cluster, which wait at one barrier and read each other's shared memory. A kernel uses them
// through these calls, which the CPU emulator (kernels/emulation/) provides in its own way, so the
// kernel's code is the same on both. Clusters run along x only, of the portable sizes 1-8.
#pragma once

#include <cuda_runtime_api.h>

#include <utility>

#include "kernels/common/cuda_check.h"

#if defined(ALBION_CUDA_EMULATION)

namespace albion::kernels {

__device__ __forceinline__ unsigned cluster_rank() { return emulation::cluster_rank(); }
__device__ __forceinline__ void cluster_sync() {
  emulation::cluster_sync();
  asm volatile("" ::: "memory");  // shared memory of the cluster may have changed, as at __syncthreads
}
template <typename T>
__device__ __forceinline__ T* cluster_shared(T* address, unsigned rank) {
  return static_cast<T*>(emulation::cluster_shared(const_cast<void*>(static_cast<const void*>(address)), rank));
}

template <typename... Params, typename... Args>
void launch_in_clusters(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, unsigned cluster,
                        cudaStream_t /*stream: work runs at once*/, Args&&... args) {
  emulation::launch_clustered(name, kernel, grid, block, cluster)(std::forward<Args>(args)...);
  ALBION_CUDA_CHECK(cudaGetLastError());
}

// The emulator runs any portable cluster, one at a time.
inline int active_clusters(const void* /*kernel*/, int /*threads*/, unsigned cluster) { return cluster <= 8 ? 1 : 0; }

}  // namespace albion::kernels

#else

#include <cooperative_groups.h>

namespace albion::kernels {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
// Before sm_90 (A100's sm_80) there are no clusters: active_clusters finds none there, so the host
// launches such a kernel with clusters of one block only, which these calls serve exactly. A rank
// other than 0 cannot occur; it traps rather than read another block's memory.
__device__ __forceinline__ unsigned cluster_rank() { return 0; }
__device__ __forceinline__ void cluster_sync() { __syncthreads(); }
template <typename T>
__device__ __forceinline__ T* cluster_shared(T* address, unsigned rank) {
  if (rank != 0) __trap();
  return address;
}
#else
// This block's rank in its cluster, 0 .. cluster - 1.
__device__ __forceinline__ unsigned cluster_rank() { return cooperative_groups::this_cluster().block_rank(); }

// Waits for every thread of the cluster; shared memory written before it is visible to the whole
// cluster after it.
__device__ __forceinline__ void cluster_sync() { cooperative_groups::this_cluster().sync(); }

// Block `rank`'s copy of the __shared__ value at `address`. Its block must not have returned: a
// kernel ends with a cluster_sync after its last such read.
template <typename T>
__device__ __forceinline__ T* cluster_shared(T* address, unsigned rank) {
  return cooperative_groups::this_cluster().map_shared_rank(address, rank);
}
#endif

// The configuration of a launch in clusters of `cluster` blocks along x, whose cluster dimension
// `attribute` holds (a cluster of one block is a plain launch).
inline cudaLaunchConfig_t cluster_launch_config(dim3 grid, dim3 block, unsigned cluster, cudaStream_t stream,
                                                cudaLaunchAttribute& attribute) {
  attribute = {};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = cluster;
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = cluster > 1 ? 1 : 0;
  return config;
}

// kernel<<<grid, block, 0, stream>>>(args) in clusters of `cluster` blocks along x (grid.x a
// multiple of it). `name` names the kernel for the emulator's launch counts.
template <typename... Params, typename... Args>
void launch_in_clusters(const char* /*name*/, void (*kernel)(Params...), dim3 grid, dim3 block, unsigned cluster,
                        cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attribute;
  const cudaLaunchConfig_t config = cluster_launch_config(grid, block, cluster, stream, attribute);
  ALBION_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

// How many clusters of `cluster` blocks of `threads` threads of `kernel` the current GPU runs at
// once: 0 where it cannot run them (a refusal is an answer here, not an error for the next
// launch's check). A GPU without clusters (before sm_90) runs none.
inline int active_clusters(const void* kernel, int threads, unsigned cluster) {
  int device = 0;
  int clusters_launch = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&clusters_launch, cudaDevAttrClusterLaunch, device) != cudaSuccess || !clusters_launch) {
    (void)cudaGetLastError();
    return 0;
  }
  cudaLaunchAttribute attribute;
  const cudaLaunchConfig_t config = cluster_launch_config(dim3(cluster), dim3(threads), cluster, nullptr, attribute);
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return clusters;
}

}  // namespace albion::kernels

#endif
