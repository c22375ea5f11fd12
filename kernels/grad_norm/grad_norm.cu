// File: kernels/grad_norm/grad_norm.cu
// Multi-tensor squared norm: the host cuts every tensor into chunks of kChunk elements (a table the
// torch layer uploads); block b reduces chunk b (16-byte packs where the chunk is aligned, then a
// scalar tail) to one fp64 partial, and one block sums the partials in a fixed order. Reference:
// grad_norm_ref.cpp. Test: tests/kernels/grad_norm_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/grad_norm/grad_norm.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

constexpr std::int64_t kChunk = 65536;  // a multiple of every pack size: chunks keep their alignment
constexpr int kThreads = 512;
constexpr int kFinishThreads = 1024;

struct Chunk {
  const void* data;  // advanced to the chunk's first element
  std::int64_t numel;
  DType dtype;
};

template <typename T>
__device__ float chunk_sum_of_squares(const T* __restrict__ data, std::int64_t numel) {
  constexpr int kVec = 16 / sizeof(T);
  using P = Pack<T, kVec>;
  float sum = 0.0f;
  std::int64_t scalar_start = 0;
  if (aligned16(data)) {
    const std::int64_t packs = numel / kVec;
    for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      const P pack = reinterpret_cast<const P*>(data)[p];
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        const float x = to_float(pack.values[k]);
        sum += x * x;
      }
    }
    scalar_start = packs * kVec;
  }
  for (std::int64_t i = scalar_start + threadIdx.x; i < numel; i += blockDim.x) {
    const float x = to_float(data[i]);
    sum += x * x;
  }
  return sum;
}

__global__ void chunk_partials_kernel(const Chunk* __restrict__ chunks, double* __restrict__ partials) {
  const Chunk c = chunks[blockIdx.x];
  const float sum = c.dtype == DType::kBFloat16
                        ? chunk_sum_of_squares(static_cast<const __nv_bfloat16*>(c.data), c.numel)
                        : chunk_sum_of_squares(static_cast<const float*>(c.data), c.numel);
  const float total = block_sum(sum);
  if (threadIdx.x == 0) partials[blockIdx.x] = static_cast<double>(total);
}

__global__ void finish_kernel(const double* __restrict__ partials, std::int64_t count, double* __restrict__ out) {
  __shared__ double sums[kFinishThreads];
  double sum = 0.0;
  for (std::int64_t i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
  sums[threadIdx.x] = sum;
  __syncthreads();
  for (int half = kFinishThreads / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) sums[threadIdx.x] += sums[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = sums[0];
}

std::int64_t element_bytes(DType dtype) { return dtype == DType::kBFloat16 ? 2 : 4; }

}  // namespace

std::vector<std::byte> squared_norm_chunk_table(const std::vector<NormTensor>& tensors) {
  std::vector<Chunk> chunks;
  for (const NormTensor& t : tensors) {
    for (std::int64_t start = 0; start < t.numel; start += kChunk) {
      chunks.push_back({static_cast<const char*>(t.data) + start * element_bytes(t.dtype),
                        std::min(kChunk, t.numel - start), t.dtype});
    }
  }
  ALBION_CHECK(chunks.size() <= 0x7fffffff, "squared norm: too many chunks");
  std::vector<std::byte> bytes(chunks.size() * sizeof(Chunk));
  std::memcpy(bytes.data(), chunks.data(), bytes.size());
  return bytes;
}

std::int64_t squared_norm_chunks(std::size_t table_bytes) {
  return static_cast<std::int64_t>(table_bytes / sizeof(Chunk));
}

void launch_squared_norm(const void* device_table, std::size_t table_bytes, double* partials, double* out,
                         cudaStream_t stream) {
  const std::int64_t chunks = squared_norm_chunks(table_bytes);
  ALBION_CHECK(chunks > 0, "squared norm: an empty chunk table");
  chunk_partials_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(
      static_cast<const Chunk*>(device_table), partials);
  ALBION_CUDA_CHECK(cudaGetLastError());
  finish_kernel<<<1, kFinishThreads, 0, stream>>>(partials, chunks, out);
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace albion::kernels
