// File: kernels/rmsnorm/rmsnorm.cu
// RMSNorm forward and backward: one thread block per row (or, for a backward pass that sums the
// weight's gradient too, per segment of rows); 16-byte packs when the row length and pointers
// allow, element-wise otherwise. Two passes over the row (sum of squares, then scale): from registers for
// rows that fit them (Note [Rows held in registers], block_reduce.cuh), else the second from L1/L2.
// With a residual, x + r (r in R: x's dtype T, or bf16 for fp32 x) is summed into `sum` in the first
// pass and normalised; the backward adds the sum's own gradient to dx. y is written in O (T, or
// bf16 for fp32 x) to each of its copies (NormOutputs); dy is read as packs of T from its readers'
// arrays of G (OutputGradients).
// Reference: rmsnorm_ref.cpp. Test: tests/kernels/rmsnorm_test.cpp.
#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/common/segment_sums.cuh"
#include "kernels/rmsnorm/rmsnorm.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// y's copies (RmsNormForwardParams::output, further_outputs), each written the same packs.
template <typename O>
struct NormOutputs {
  O* copies[kMaxNormOutputs];  // null past the last

  template <int kVec>
  __device__ __forceinline__ void store(std::int64_t pack, const Pack<O, kVec>& value) const {
#pragma unroll
    for (O* copy : copies) {
      if (copy != nullptr) reinterpret_cast<Pack<O, kVec>*>(copy)[pack] = value;
    }
  }
};

// dy: the gradients of y's copies (RmsNormBackwardParams::grad_output, further_grad_outputs).
template <typename G>
struct OutputGradients {
  const G* readers[kMaxNormOutputs];  // null past the last
};

// Pack `pack` of dy as x's type T: read as it is where G is T (one reader); else the readers' G
// packs widened to T (fp32) and summed in their order.
template <typename T, int kVec, typename G>
__device__ __forceinline__ Pack<T, kVec> gradient_pack(const OutputGradients<G>& dy, std::int64_t pack) {
  using D = Pack<G, kVec>;
  if constexpr (std::is_same_v<T, G>) {
    return load_pack(reinterpret_cast<const D*>(dy.readers[0]) + pack);
  } else {
    const D first = load_pack(reinterpret_cast<const D*>(dy.readers[0]) + pack);
    Pack<T, kVec> sum;
#pragma unroll
    for (int k = 0; k < kVec; ++k) sum.values[k] = from_float<T>(to_float(first.values[k]));
#pragma unroll
    for (int r = 1; r < kMaxNormOutputs; ++r) {
      if (dy.readers[r] != nullptr) sum = summed(sum, load_pack(reinterpret_cast<const D*>(dy.readers[r]) + pack));
    }
    return sum;
  }
}

// This thread's slots of dy's row starting at pack `offset` (of `packs` packs; slots past its end
// are zero), as load_row_slots loads one array's.
template <typename T, int kVec, int kSlots, typename G>
__device__ __forceinline__ void load_gradient_slots(const OutputGradients<G>& dy, std::int64_t offset, int packs,
                                                    Pack<T, kVec> (&slots)[kSlots]) {
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    slots[i] = slot_pack(i) < packs ? gradient_pack<T, kVec>(dy, offset + slot_pack(i)) : Pack<T, kVec>{};
  }
}

// One pack's share of each pass, shared by the looping kernels and those holding the row in
// registers: the sum of squares; y = x r w; the sum of w dy x; dx = r w dy - c x; dy x r.
template <typename T, int kVec>
__device__ __forceinline__ void add_squares(const Pack<T, kVec>& x, float& sum) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) sum += to_float(x.values[k]) * to_float(x.values[k]);
}

template <typename O, typename T, int kVec>
__device__ __forceinline__ Pack<O, kVec> normalized(const Pack<T, kVec>& x, const Pack<T, kVec>& w, float scale) {
  Pack<O, kVec> out;
#pragma unroll
  for (int k = 0; k < kVec; ++k) out.values[k] = from_float<O>(to_float(x.values[k]) * scale * to_float(w.values[k]));
  return out;
}

template <typename T, int kVec>
__device__ __forceinline__ void add_weighted_dot(const Pack<T, kVec>& dy, const Pack<T, kVec>& x,
                                                 const Pack<T, kVec>& w, float& dot) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) dot += to_float(w.values[k]) * to_float(dy.values[k]) * to_float(x.values[k]);
}

template <typename T, int kVec>
__device__ __forceinline__ Pack<T, kVec> input_gradient(const Pack<T, kVec>& dy, const Pack<T, kVec>& x,
                                                        const Pack<T, kVec>& w, float scale, float correction) {
  Pack<T, kVec> out;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    out.values[k] =
        from_float<T>(scale * to_float(w.values[k]) * to_float(dy.values[k]) - correction * to_float(x.values[k]));
  }
  return out;
}

// dweight's share, in the order of the separate sum (norm_parameter_grad.cu): dy x r.
template <typename T, int kVec>
__device__ __forceinline__ void add_weight_gradient(const Pack<T, kVec>& dy, const Pack<T, kVec>& x, float scale,
                                                    float (&sums)[kVec]) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) sums[k] += to_float(dy.values[k]) * to_float(x.values[k]) * scale;
}

template <typename T, typename O, typename R, int kVec>
__global__ void rmsnorm_forward_kernel(const T* __restrict__ input, const R* __restrict__ residual,
                                       const T* __restrict__ weight, NormOutputs<O> outputs,
                                       T* __restrict__ sum_output, float* __restrict__ inv_rms, std::int64_t cols,
                                       float eps) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* x = reinterpret_cast<const P*>(input + row * cols);
  const auto* r = optional_row<const Pack<R, kVec>>(residual, row, cols);
  P* s = optional_row<P>(sum_output, row, cols);
  const P* w = reinterpret_cast<const P*>(weight);
  const std::int64_t packs = cols / kVec;
  // Pack p of the row normalised: x's, or x + r, added again in the second pass rather than read
  // back from the sum (a buffer this kernel writes cannot be read through the read-only path the
  // compiler takes for the inputs).
  const auto row_pack = [&](std::int64_t p) {
    return r != nullptr ? summed(load_pack(x + p), load_pack(r + p)) : load_pack(x + p);
  };

  float sum_squares = 0.0f;
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    const P v = row_pack(p);
    if (s != nullptr) s[p] = v;
    add_squares(v, sum_squares);
  }
  const float scale = rsqrtf(block_sum(sum_squares) / static_cast<float>(cols) + eps);
  if (inv_rms != nullptr && threadIdx.x == 0) inv_rms[row] = scale;
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    outputs.store(row * packs + p, normalized<O>(row_pack(p), load_pack(w + p), scale));
  }
}

// The forward pass with the row in registers: kSlots packs per thread.
template <typename T, typename O, typename R, int kVec, int kSlots>
__global__ void __launch_bounds__(kMaxRegisterRowThreads)
    rmsnorm_forward_registers_kernel(const T* __restrict__ input, const R* __restrict__ residual,
                                     const T* __restrict__ weight, NormOutputs<O> outputs,
                                     T* __restrict__ sum_output, float* __restrict__ inv_rms, std::int64_t cols,
                                     float eps) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* w = reinterpret_cast<const P*>(weight);
  const int packs = static_cast<int>(cols / kVec);
  P v[kSlots];
  load_row_slots(reinterpret_cast<const P*>(input + row * cols), packs, v);
  add_residual_slots(v, residual, sum_output, row, cols);

  float sum_squares = 0.0f;  // zero slots add nothing
#pragma unroll
  for (const P& pack : v) add_squares(pack, sum_squares);
  const float scale = rsqrtf(block_sum(sum_squares) / static_cast<float>(cols) + eps);
  if (inv_rms != nullptr && threadIdx.x == 0) inv_rms[row] = scale;
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    const int p = slot_pack(i);
    if (p >= packs) break;
    outputs.store(row * packs + p, normalized<O>(v[i], load_pack(w + p), scale));
  }
}

// dx = r g - r^3 x mean(g x), g = weight * dy, with r saved by the forward pass.
template <typename T, typename G, int kVec>
__global__ void rmsnorm_backward_kernel(OutputGradients<G> grad_output, const T* __restrict__ input,
                                        const T* __restrict__ weight, const float* __restrict__ inv_rms,
                                        const T* __restrict__ grad_sum, T* __restrict__ grad_input,
                                        std::int64_t cols) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* x = reinterpret_cast<const P*>(input + row * cols);
  const P* w = reinterpret_cast<const P*>(weight);
  const P* ds = optional_row<const P>(grad_sum, row, cols);
  P* dx = reinterpret_cast<P*>(grad_input + row * cols);
  const std::int64_t packs = cols / kVec;
  const auto dy = [&](std::int64_t p) { return gradient_pack<T, kVec>(grad_output, row * packs + p); };

  float dot = 0.0f;
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    add_weighted_dot(dy(p), load_pack(x + p), load_pack(w + p), dot);
  }
  const float scale = inv_rms[row];
  const float correction = scale * scale * scale * block_sum(dot) / static_cast<float>(cols);
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    const P g = input_gradient(dy(p), load_pack(x + p), load_pack(w + p), scale, correction);
    dx[p] = ds != nullptr ? summed(g, load_pack(ds + p)) : g;
  }
}

// One row's dx from its dy, x and weight held in this thread's slots: the block's weighted dot,
// then dx = r w dy - c x for the slots inside the row, plus the row of ds where there is one.
template <typename T, int kVec, int kSlots>
__device__ __forceinline__ void write_input_gradient(const Pack<T, kVec> (&d)[kSlots], const Pack<T, kVec> (&v)[kSlots],
                                                     const Pack<T, kVec> (&g)[kSlots], float scale, std::int64_t cols,
                                                     const Pack<T, kVec>* __restrict__ ds,
                                                     Pack<T, kVec>* __restrict__ dx) {
  float dot = 0.0f;  // zero slots add nothing
#pragma unroll
  for (int i = 0; i < kSlots; ++i) add_weighted_dot(d[i], v[i], g[i], dot);
  const float correction = scale * scale * scale * block_sum(dot) / static_cast<float>(cols);
  const int packs = static_cast<int>(cols / kVec);
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    const int p = slot_pack(i);
    if (p >= packs) break;
    const Pack<T, kVec> gradient = input_gradient(d[i], v[i], g[i], scale, correction);
    dx[p] = ds != nullptr ? summed(gradient, load_pack(ds + p)) : gradient;
  }
}

// The backward pass with the row's dy, x and weight in registers: kSlots packs each per thread.
template <typename T, typename G, int kVec, int kSlots>
__global__ void __launch_bounds__(kMaxRegisterRowThreads)
    rmsnorm_backward_registers_kernel(OutputGradients<G> grad_output, const T* __restrict__ input,
                                      const T* __restrict__ weight, const float* __restrict__ inv_rms,
                                      const T* __restrict__ grad_sum, T* __restrict__ grad_input,
                                      std::int64_t cols) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const int packs = static_cast<int>(cols / kVec);
  P d[kSlots], v[kSlots], g[kSlots];
  load_gradient_slots(grad_output, row * packs, packs, d);
  load_row_slots(reinterpret_cast<const P*>(input + row * cols), packs, v);
  load_row_slots(reinterpret_cast<const P*>(weight), packs, g);
  write_input_gradient(d, v, g, inv_rms[row], cols, optional_row<const P>(grad_sum, row, cols),
                       reinterpret_cast<P*>(grad_input + row * cols));
}

// The backward pass that also sums the weight's gradient (Note [Parameter gradients in the
// backward pass], block_reduce.cuh): block b takes row segment b of rows_per_segment rows, adds
// dy x r for its threads' columns in registers, and writes the sums to weight_partials[b, :].
template <typename T, typename G, int kVec, int kSlots>
__global__ void __launch_bounds__(kMaxSummingRowThreads)
    rmsnorm_backward_summing_kernel(OutputGradients<G> grad_output, const T* __restrict__ input,
                                    const T* __restrict__ weight, const float* __restrict__ inv_rms,
                                    const T* __restrict__ grad_sum, T* __restrict__ grad_input,
                                    float* __restrict__ weight_partials,
                                    std::int64_t rows, std::int64_t cols, std::int64_t rows_per_segment) {
  using P = Pack<T, kVec>;
  const int packs = static_cast<int>(cols / kVec);
  const P* x = reinterpret_cast<const P*>(input);
  P g[kSlots];
  load_row_slots(reinterpret_cast<const P*>(weight), packs, g);
  float weight_sums[kSlots][kVec] = {};
  const std::int64_t begin = blockIdx.x * rows_per_segment;
  const std::int64_t end = min(rows, begin + rows_per_segment);
  const auto row_gradients = [&](std::int64_t row, const P(&d)[kSlots], const P(&v)[kSlots]) {
    const float scale = inv_rms[row];
#pragma unroll
    for (int i = 0; i < kSlots; ++i) add_weight_gradient(d[i], v[i], scale, weight_sums[i]);
    write_input_gradient(d, v, g, scale, cols, optional_row<const P>(grad_sum, row, cols),
                         reinterpret_cast<P*>(grad_input + row * cols));
  };
  const auto load_dy = [&](std::int64_t offset, int row_packs, P(&d)[kSlots]) {
    load_gradient_slots(grad_output, offset, row_packs, d);
  };
  for_each_segment_row_of<kSlots, P>(load_dy, x, begin, end, packs, row_gradients);
  store_slot_sums(weight_sums, weight_partials + blockIdx.x * cols, packs);
}

// y's copies as the kernels take them.
template <typename O>
NormOutputs<O> norm_outputs(const RmsNormForwardParams& p) {
  NormOutputs<O> outputs{{static_cast<O*>(p.output)}};
  for (int c = 1; c < kMaxNormOutputs; ++c) outputs.copies[c] = static_cast<O*>(p.further_outputs[c - 1]);
  return outputs;
}

template <typename G>
OutputGradients<G> output_gradients(const RmsNormBackwardParams& p) {
  OutputGradients<G> gradients{{static_cast<const G*>(p.grad_output)}};
  for (int c = 1; c < kMaxNormOutputs; ++c) gradients.readers[c] = static_cast<const G*>(p.further_grad_outputs[c - 1]);
  return gradients;
}

template <typename T, typename O, typename R>
void launch_typed(const RmsNormForwardParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  using Y = Pack<O, kVec>;
  // (A null residual, sum or further output passes the alignment tests.)
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.input) && aligned16(p.weight) &&
                          aligned_for<Y>(p.output) && aligned_for<Y>(p.further_outputs[0]) &&
                          aligned_for<Y>(p.further_outputs[1]) && aligned_for<Pack<R, kVec>>(p.residual) &&
                          aligned16(p.sum);
  const std::int64_t units = vectorised ? p.cols / kVec : p.cols;
  const int threads = threads_for_row(units);
  const dim3 grid(static_cast<unsigned>(p.rows));
  const auto* x = static_cast<const T*>(p.input);
  const auto* r = static_cast<const R*>(p.residual);
  const auto* w = static_cast<const T*>(p.weight);
  const NormOutputs<O> y = norm_outputs<O>(p);
  auto* s = static_cast<T*>(p.sum);
  if (vectorised && row_fits_registers(units)) {
    rmsnorm_forward_registers_kernel<T, O, R, kVec, kRowPacksPerThread>
        <<<grid, threads_for_register_row(units), 0, stream>>>(x, r, w, y, s, p.inv_rms, p.cols, p.eps);
  } else if (vectorised) {
    rmsnorm_forward_kernel<T, O, R, kVec><<<grid, threads, 0, stream>>>(x, r, w, y, s, p.inv_rms, p.cols, p.eps);
  } else {
    rmsnorm_forward_kernel<T, O, R, 1><<<grid, threads, 0, stream>>>(x, r, w, y, s, p.inv_rms, p.cols, p.eps);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <typename T, typename G>
bool vectorised_backward(const RmsNormBackwardParams& p) {
  constexpr int kVec = 16 / sizeof(T);
  using D = Pack<G, kVec>;
  return p.cols % kVec == 0 && aligned_for<D>(p.grad_output) && aligned_for<D>(p.further_grad_outputs[0]) &&
         aligned_for<D>(p.further_grad_outputs[1]) && aligned16(p.input) && aligned16(p.weight) &&
         aligned16(p.grad_input) && aligned16(p.grad_sum);
}

template <typename T, typename G>
void launch_backward_typed(const RmsNormBackwardParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = vectorised_backward<T, G>(p);
  const std::int64_t units = vectorised ? p.cols / kVec : p.cols;
  const int threads = threads_for_row(units);
  const dim3 grid(static_cast<unsigned>(p.rows));
  const OutputGradients<G> dy = output_gradients<G>(p);
  const auto* x = static_cast<const T*>(p.input);
  const auto* w = static_cast<const T*>(p.weight);
  const auto* ds = static_cast<const T*>(p.grad_sum);
  auto* dx = static_cast<T*>(p.grad_input);
  if (p.grad_weight != nullptr) {
    ALBION_CHECK(vectorised && row_fits_summing_registers(units),
                 "rmsnorm backward: the weight's gradient is summed in this pass only for rows that fit registers");
    const std::int64_t segments = p.weight_segments;
    rmsnorm_backward_summing_kernel<T, G, kVec, kSummingPacksPerThread>
        <<<static_cast<unsigned>(segments), threads_for_summing_row(units), 0, stream>>>(
            dy, x, w, p.inv_rms, ds, dx, p.weight_partials, p.rows, p.cols, (p.rows + segments - 1) / segments);
    ALBION_CUDA_CHECK(cudaGetLastError());
    add_segments_kernel<><<<segment_tile_grid(p.cols, 1), segment_tile_block(), 0, stream>>>(
        p.weight_partials, segments, p.cols, p.grad_weight);
  } else if (vectorised && row_fits_registers(units)) {
    rmsnorm_backward_registers_kernel<T, G, kVec, kRowPacksPerThread>
        <<<grid, threads_for_register_row(units), 0, stream>>>(dy, x, w, p.inv_rms, ds, dx, p.cols);
  } else if (vectorised) {
    rmsnorm_backward_kernel<T, G, kVec><<<grid, threads, 0, stream>>>(dy, x, w, p.inv_rms, ds, dx, p.cols);
  } else {
    rmsnorm_backward_kernel<T, G, 1><<<grid, threads, 0, stream>>>(dy, x, w, p.inv_rms, ds, dx, p.cols);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <typename T, typename G>
std::int64_t weight_segments_typed(const RmsNormBackwardParams& p, int multiprocessors) {
  constexpr int kVec = 16 / sizeof(T);
  if (!vectorised_backward<T, G>(p) || !row_fits_summing_registers(p.cols / kVec)) return 0;
  const auto kernel = &rmsnorm_backward_summing_kernel<T, G, kVec, kSummingPacksPerThread>;
  return register_row_segments(p.rows, reinterpret_cast<const void*>(kernel), threads_for_summing_row(p.cols / kVec),
                               multiprocessors);
}

// Calls run(T{}, G{}) with x's type and dy's.
template <typename Run>
auto with_backward_types(const RmsNormBackwardParams& p, Run run) {
  if (p.dtype == DType::kBFloat16) return run(__nv_bfloat16{}, __nv_bfloat16{});
  if (p.bf16_grad_output) return run(float{}, __nv_bfloat16{});
  return run(float{}, float{});
}

// Whether `pointers` holds none after the first null.
template <typename Pointer, std::size_t kCount>
bool nulls_last(const Pointer (&pointers)[kCount]) {
  for (std::size_t i = 1; i < kCount; ++i) {
    if (pointers[i - 1] == nullptr && pointers[i] != nullptr) return false;
  }
  return true;
}

}  // namespace

std::int64_t rmsnorm_backward_weight_segments(const RmsNormBackwardParams& params, int multiprocessors) {
  if (params.rows <= 0 || params.cols <= 0) return 0;
  return with_backward_types(params, [&](auto x, auto dy) {
    return weight_segments_typed<decltype(x), decltype(dy)>(params, multiprocessors);
  });
}

void launch_rmsnorm_backward(const RmsNormBackwardParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.rows >= 0 && params.cols > 0, "rmsnorm backward: bad shape ", params.rows, "x", params.cols);
  ALBION_CHECK(params.rows <= 0x7fffffff, "rmsnorm backward: ", params.rows, " rows exceed the grid limit");
  ALBION_CHECK(params.grad_weight == nullptr ||
                   (params.weight_partials != nullptr && params.weight_segments > 0 &&
                    params.weight_segments <= params.rows),
               "rmsnorm backward: ", params.weight_segments, " weight segments for ", params.rows, " rows");
  ALBION_CHECK(!params.bf16_grad_output || params.dtype == DType::kFloat32, "rmsnorm backward: a bf16 dy beside "
               "fp32 x only");
  ALBION_CHECK((params.further_grad_outputs[0] == nullptr || params.bf16_grad_output) &&
                   nulls_last(params.further_grad_outputs),
               "rmsnorm backward: further gradients come in bf16 beside fp32 x, none after a null");
  if (params.rows == 0) return;
  with_backward_types(params,
                      [&](auto x, auto dy) { launch_backward_typed<decltype(x), decltype(dy)>(params, stream); });
}

void launch_rmsnorm_forward(const RmsNormForwardParams& params, cudaStream_t stream) {
  ALBION_CHECK(params.rows >= 0 && params.cols > 0, "rmsnorm: bad shape ", params.rows, "x",
               params.cols);
  ALBION_CHECK(params.rows <= 0x7fffffff, "rmsnorm: ", params.rows, " rows exceed the grid limit");
  ALBION_CHECK((params.residual == nullptr) == (params.sum == nullptr),
               "rmsnorm: a residual and the sum to write go together");
  ALBION_CHECK(!params.bf16_residual || (params.dtype == DType::kFloat32 && params.residual != nullptr),
               "rmsnorm: a bf16 residual beside fp32 x only");
  ALBION_CHECK(!params.bf16_output || params.dtype == DType::kFloat32, "rmsnorm: a bf16 y beside fp32 x only");
  ALBION_CHECK((params.further_outputs[0] == nullptr || params.bf16_output) && nulls_last(params.further_outputs),
               "rmsnorm: further outputs are bf16 beside fp32 x, none after a null");
  if (params.rows == 0) return;
  // {x, y, r}: y is x's type or bf16; r is x's or bf16.
  if (params.dtype == DType::kBFloat16) {
    launch_typed<__nv_bfloat16, __nv_bfloat16, __nv_bfloat16>(params, stream);
  } else if (params.bf16_output) {
    params.bf16_residual || params.residual == nullptr
        ? launch_typed<float, __nv_bfloat16, __nv_bfloat16>(params, stream)
        : launch_typed<float, __nv_bfloat16, float>(params, stream);
  } else {
    params.bf16_residual ? launch_typed<float, float, __nv_bfloat16>(params, stream)
                         : launch_typed<float, float, float>(params, stream);
  }
}

}  // namespace albion::kernels
