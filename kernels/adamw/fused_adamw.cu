// File: kernels/adamw/fused_adamw.cu
// Multi-tensor AdamW: the host cuts every tensor into chunks of kChunk elements and uploads a
// table of chunks; each block runs one chunk with a block-stride loop over 16-byte packs (a chunk
// starts a multiple of kChunk elements into its tensor, so it keeps the tensor's alignment), then
// a scalar tail, writing the bf16 copy where one is asked for.
// Reference: fused_adamw_ref.cpp. Test:
// tests/kernels/fused_adamw_test.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/adamw/fused_adamw.cuh"
#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

constexpr std::int64_t kChunk = 65536;
constexpr int kThreads = 512;

struct Chunk {
  AdamWTensor tensor;   // pointers advanced to the chunk's start
  std::int64_t numel;   // elements in this chunk
};

// The reference's expressions with every operation rounded on its own (__f*_rn): nvcc would fuse
// a * b + c into one fma, rounding differently from the CPU, and parameters near zero would then
// differ from the reference by more than 1e-5 relative after a few steps. Memory-bound: free.
__device__ __forceinline__ void update(float& p, float& m, float& v, float g, bool decayed, const AdamWHyper& h) {
  m = __fadd_rn(__fmul_rn(m, h.beta1), __fmul_rn(g, __fsub_rn(1.0f, h.beta1)));
  v = __fadd_rn(__fmul_rn(v, h.beta2), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, h.beta2), g), g));
  if (decayed && h.weight_decay > 0) p = __fmul_rn(p, __fsub_rn(1.0f, __fmul_rn(h.lr, h.weight_decay)));
  const float denominator = __fadd_rn(__fsqrt_rn(__fdiv_rn(v, h.bias_correction2)), h.eps);
  p = __fadd_rn(p, __fmul_rn(__fdiv_rn(-h.lr, h.bias_correction1), __fdiv_rn(m, denominator)));
}

__device__ __forceinline__ void store_copy(std::uint16_t* copy, std::int64_t i, float p) {
  if (copy != nullptr) copy[i] = __bfloat16_as_ushort(__float2bfloat16_rn(p));
}

// 16-byte packs (4 floats) when every pointer of the chunk is aligned, then a scalar tail.
__global__ void fused_adamw_kernel(const Chunk* __restrict__ chunks, AdamWHyper h) {
  const Chunk c = chunks[blockIdx.x];
  const AdamWTensor& t = c.tensor;
  const float scale = h.gradient_scale != nullptr ? *h.gradient_scale : 1.0f;  // x 1 is exact
  std::int64_t scalar_start = 0;
  if (aligned16(t.parameter) && aligned16(t.gradient) && aligned16(t.exp_avg) && aligned16(t.exp_avg_sq) &&
      reinterpret_cast<std::uintptr_t>(t.bf16_copy) % 8 == 0) {
    const std::int64_t packs = c.numel / 4;
    for (std::int64_t k = threadIdx.x; k < packs; k += blockDim.x) {
      float4 p = reinterpret_cast<const float4*>(t.parameter)[k];
      float4 m = reinterpret_cast<const float4*>(t.exp_avg)[k];
      float4 v = reinterpret_cast<const float4*>(t.exp_avg_sq)[k];
      const float4 g = reinterpret_cast<const float4*>(t.gradient)[k];
      update(p.x, m.x, v.x, __fmul_rn(g.x, scale), t.decayed, h);
      update(p.y, m.y, v.y, __fmul_rn(g.y, scale), t.decayed, h);
      update(p.z, m.z, v.z, __fmul_rn(g.z, scale), t.decayed, h);
      update(p.w, m.w, v.w, __fmul_rn(g.w, scale), t.decayed, h);
      reinterpret_cast<float4*>(t.parameter)[k] = p;
      reinterpret_cast<float4*>(t.exp_avg)[k] = m;
      reinterpret_cast<float4*>(t.exp_avg_sq)[k] = v;
      if (t.bf16_copy != nullptr) {
        ushort4 copy;
        copy.x = __bfloat16_as_ushort(__float2bfloat16_rn(p.x));
        copy.y = __bfloat16_as_ushort(__float2bfloat16_rn(p.y));
        copy.z = __bfloat16_as_ushort(__float2bfloat16_rn(p.z));
        copy.w = __bfloat16_as_ushort(__float2bfloat16_rn(p.w));
        reinterpret_cast<ushort4*>(t.bf16_copy)[k] = copy;
      }
    }
    scalar_start = packs * 4;
  }
  for (std::int64_t i = scalar_start + threadIdx.x; i < c.numel; i += blockDim.x) {
    float p = t.parameter[i];
    float m = t.exp_avg[i];
    float v = t.exp_avg_sq[i];
    update(p, m, v, __fmul_rn(t.gradient[i], scale), t.decayed, h);
    t.parameter[i] = p;
    t.exp_avg[i] = m;
    t.exp_avg_sq[i] = v;
    store_copy(t.bf16_copy, i, p);
  }
}

}  // namespace

std::vector<std::byte> fused_adamw_chunk_table(const std::vector<AdamWTensor>& tensors) {
  std::vector<Chunk> chunks;
  for (const AdamWTensor& t : tensors) {
    for (std::int64_t start = 0; start < t.numel; start += kChunk) {
      Chunk c{t, std::min(kChunk, t.numel - start)};
      c.tensor.parameter += start;
      c.tensor.gradient += start;
      c.tensor.exp_avg += start;
      c.tensor.exp_avg_sq += start;
      if (c.tensor.bf16_copy != nullptr) c.tensor.bf16_copy += start;
      chunks.push_back(c);
    }
  }
  ALBION_CHECK(chunks.size() <= 0x7fffffff, "fused AdamW: too many chunks");
  std::vector<std::byte> bytes(chunks.size() * sizeof(Chunk));
  std::memcpy(bytes.data(), chunks.data(), bytes.size());
  return bytes;
}

void launch_fused_adamw(const void* device_table, std::size_t table_bytes, const AdamWHyper& hyper,
                        cudaStream_t stream) {
  const std::size_t chunks = table_bytes / sizeof(Chunk);
  if (chunks == 0) return;
  fused_adamw_kernel<<<static_cast<unsigned>(chunks), kThreads, 0, stream>>>(static_cast<const Chunk*>(device_table),
                                                                             hyper);
  ALBION_CUDA_CHECK(cudaGetLastError());
}

}  // namespace albion::kernels
