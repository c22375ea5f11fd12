// File: kernels/layernorm/layernorm.cu
// LayerNorm forward and backward: one block per row (or, for a backward pass that sums the
// parameters' gradients too, per segment of rows), 16-byte packs when the row length and the
// pointers allow, element-wise otherwise. Passes after the first read the row from registers when
// it fits them (Note [Rows held in registers], block_reduce.cuh), else from L1/L2. T is x's (and
// the parameters') dtype; O, y's, and G, dy's: T's, or bf16 for fp32 x (LayerNormParams::bf16_output),
// in packs of as many elements as T's. With a residual, x + r (r in R: O's dtype, or bf16 for fp32
// x) is summed into `sum` in the first pass and normalised; the backward adds the sum's own
// gradient to dx.
// Reference: layernorm_ref.cpp. Test: tests/kernels/layernorm_test.cpp.
#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/common/block_reduce.cuh"
#include "kernels/common/cuda_check.h"
#include "kernels/common/segment_sums.cuh"
#include "kernels/layernorm/layernorm.cuh"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// One pack's share of each pass, shared by the looping kernels and those holding the row in
// registers: the sum; the sum of squared deviations; y = (x - mean) rstd w + b; the sums of
// g = w dy and g xhat; dx = rstd (g - mean(g) - xhat mean(g xhat)); dy xhat and dy. x and the
// parameters come in T, y goes out in O, dy comes in G.
template <typename T, int kVec>
__device__ __forceinline__ void add_values(const Pack<T, kVec>& x, float& sum) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) sum += to_float(x.values[k]);
}

template <typename T, int kVec>
__device__ __forceinline__ void add_squared_deviations(const Pack<T, kVec>& x, float mu, float& squares) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const float d = to_float(x.values[k]) - mu;
    squares += d * d;
  }
}

template <typename O, typename T, int kVec>
__device__ __forceinline__ Pack<O, kVec> normalized(const Pack<T, kVec>& x, const Pack<T, kVec>& w,
                                                    const Pack<T, kVec>& b, float mu, float inv) {
  Pack<O, kVec> out;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    out.values[k] = from_float<O>((to_float(x.values[k]) - mu) * inv * to_float(w.values[k]) + to_float(b.values[k]));
  }
  return out;
}

template <typename T, typename G, int kVec>
__device__ __forceinline__ void add_gradient_sums(const Pack<T, kVec>& x, const Pack<G, kVec>& dy,
                                                  const Pack<T, kVec>& w, float mu, float inv, float& sum_g,
                                                  float& sum_g_xhat) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const float g = to_float(w.values[k]) * to_float(dy.values[k]);
    sum_g += g;
    sum_g_xhat += g * (to_float(x.values[k]) - mu) * inv;
  }
}

template <typename T, typename G, int kVec>
__device__ __forceinline__ Pack<T, kVec> input_gradient(const Pack<T, kVec>& x, const Pack<G, kVec>& dy,
                                                        const Pack<T, kVec>& w, float mu, float inv, float mean_g,
                                                        float mean_g_xhat) {
  Pack<T, kVec> out;
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const float xhat = (to_float(x.values[k]) - mu) * inv;
    const float g = to_float(w.values[k]) * to_float(dy.values[k]);
    out.values[k] = from_float<T>(inv * (g - mean_g - xhat * mean_g_xhat));
  }
  return out;
}

// dw's and db's shares, in the order of the separate sums (norm_parameter_grad.cu): dy xhat, dy.
template <typename T, typename G, int kVec>
__device__ __forceinline__ void add_parameter_gradients(const Pack<T, kVec>& x, const Pack<G, kVec>& dy, float mu,
                                                        float inv, float (&weight_sums)[kVec],
                                                        float (&bias_sums)[kVec]) {
#pragma unroll
  for (int k = 0; k < kVec; ++k) {
    const float d = to_float(dy.values[k]);
    weight_sums[k] += d * (to_float(x.values[k]) - mu) * inv;
    bias_sums[k] += d;
  }
}

// Note [A row's moments in one reduction]
// The forward pass's mean and variance took two block reductions, the second waiting on the
// first (the squared deviations need the mean): with the row in registers, LayerNorm's bf16
// forward ran at 68% of the copy bandwidth on an H200 where RMSNorm's, one reduction and similar
// loads, ran at 96%. Each thread now takes the count, mean and sum of squared deviations of its own
// slots (two passes over its registers, no cancellation), and one reduction merges those (Chan et
// al.'s pairwise update, in a form that is symmetric in its two sides bit for bit, as block_reduce
// needs). The looping kernel reads the row from L1/L2 in each pass and keeps two reductions.
struct RowMoments {
  float count;
  float mean;
  float squared_deviations;  // sum of (x - mean)^2
};

__device__ __forceinline__ RowMoments merged(RowMoments a, RowMoments b) {
  const float count = a.count + b.count;
  if (count == 0.0f) return a;  // two empty sides: threads past the row's end, or missing warps
  const float delta = b.mean - a.mean;
  return {count, (a.count * a.mean + b.count * b.mean) / count,
          (a.squared_deviations + b.squared_deviations) + delta * delta * (a.count * b.count / count)};
}

// kVec elements per load: 16-byte packs when the row length and every pointer allow, else 1.
template <typename T, typename O, typename R, int kVec>
__global__ void layernorm_forward_kernel(const T* __restrict__ input, const R* __restrict__ residual,
                                         const T* __restrict__ weight, const T* __restrict__ bias,
                                         O* __restrict__ output, T* __restrict__ sum_output,
                                         float* __restrict__ mean, float* __restrict__ rstd, std::int64_t cols,
                                         float eps) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* x = reinterpret_cast<const P*>(input + row * cols);
  const auto* r = optional_row<const Pack<R, kVec>>(residual, row, cols);
  P* s = optional_row<P>(sum_output, row, cols);
  const P* w = reinterpret_cast<const P*>(weight);
  const P* b = reinterpret_cast<const P*>(bias);
  auto* y = reinterpret_cast<Pack<O, kVec>*>(output + row * cols);
  const std::int64_t packs = cols / kVec;
  // Pack p of the row normalised: x's, or x + r, added again in each pass rather than read back
  // from the sum (a buffer this kernel writes cannot be read through the read-only path the
  // compiler takes for the inputs).
  const auto row_pack = [&](std::int64_t p) {
    return r != nullptr ? summed(load_pack(x + p), load_pack(r + p)) : load_pack(x + p);
  };
  float sum = 0.0f;
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    const P v = row_pack(p);
    if (s != nullptr) s[p] = v;
    add_values(v, sum);
  }
  const float mu = block_sum(sum) / static_cast<float>(cols);
  float squares = 0.0f;  // two passes: no cancellation in E[x^2] - E[x]^2
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) add_squared_deviations(row_pack(p), mu, squares);
  const float inv = rsqrtf(block_sum(squares) / static_cast<float>(cols) + eps);
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    y[p] = normalized<O>(row_pack(p), load_pack(w + p), load_pack(b + p), mu, inv);
  }
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = inv;
  }
}

// The forward pass with the row in registers: kSlots packs per thread.
template <typename T, typename O, typename R, int kVec, int kSlots>
__global__ void __launch_bounds__(kMaxRegisterRowThreads)
    layernorm_forward_registers_kernel(const T* __restrict__ input, const R* __restrict__ residual,
                                       const T* __restrict__ weight, const T* __restrict__ bias,
                                       O* __restrict__ output, T* __restrict__ sum_output, float* __restrict__ mean,
                                       float* __restrict__ rstd, std::int64_t cols, float eps) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* w = reinterpret_cast<const P*>(weight);
  const P* b = reinterpret_cast<const P*>(bias);
  auto* y = reinterpret_cast<Pack<O, kVec>*>(output + row * cols);
  const int packs = static_cast<int>(cols / kVec);
  P v[kSlots];
  load_row_slots(reinterpret_cast<const P*>(input + row * cols), packs, v);
  add_residual_slots(v, residual, sum_output, row, cols);
  // This thread's moments (Note [A row's moments in one reduction]): zero slots add nothing to the
  // sum, but would to the squared deviations.
  float sum = 0.0f;
  int slots = 0;
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    add_values(v[i], sum);
    slots += slot_pack(i) < packs ? 1 : 0;
  }
  const float count = static_cast<float>(slots * kVec);
  const float local_mean = slots > 0 ? sum / count : 0.0f;
  float squares = 0.0f;
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    if (slot_pack(i) >= packs) break;
    add_squared_deviations(v[i], local_mean, squares);
  }
  const RowMoments moments = block_reduce(RowMoments{count, local_mean, squares}, RowMoments{0.0f, 0.0f, 0.0f},
                                          [](RowMoments a, RowMoments b) { return merged(a, b); });
  const float mu = moments.mean;
  const float inv = rsqrtf(moments.squared_deviations / static_cast<float>(cols) + eps);
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    const int p = slot_pack(i);
    if (p >= packs) break;
    y[p] = normalized<O>(v[i], load_pack(w + p), load_pack(b + p), mu, inv);
  }
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = inv;
  }
}

template <typename T, typename G, int kVec>
__global__ void layernorm_backward_kernel(const G* __restrict__ grad_output, const T* __restrict__ input,
                                          const T* __restrict__ weight, const float* __restrict__ mean,
                                          const float* __restrict__ rstd, const T* __restrict__ grad_sum,
                                          T* __restrict__ grad_input, std::int64_t cols) {
  using P = Pack<T, kVec>;
  const std::int64_t row = blockIdx.x;
  const P* x = reinterpret_cast<const P*>(input + row * cols);
  const auto* dy = reinterpret_cast<const Pack<G, kVec>*>(grad_output + row * cols);
  const P* w = reinterpret_cast<const P*>(weight);
  const P* ds = optional_row<const P>(grad_sum, row, cols);
  P* dx = reinterpret_cast<P*>(grad_input + row * cols);
  const std::int64_t packs = cols / kVec;
  const float mu = mean[row];
  const float inv = rstd[row];
  float sum_g = 0.0f;
  float sum_g_xhat = 0.0f;
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    add_gradient_sums(load_pack(x + p), load_pack(dy + p), load_pack(w + p), mu, inv, sum_g, sum_g_xhat);
  }
  const FloatPair sums = block_sum_pair(sum_g, sum_g_xhat);
  const float mean_g = sums.first / static_cast<float>(cols);
  const float mean_g_xhat = sums.second / static_cast<float>(cols);
  for (std::int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    const P g = input_gradient(load_pack(x + p), load_pack(dy + p), load_pack(w + p), mu, inv, mean_g, mean_g_xhat);
    dx[p] = ds != nullptr ? summed(g, load_pack(ds + p)) : g;
  }
}

// One row's dx from its x, dy and weight held in this thread's slots: the block's means of g and
// g xhat, then dx for the slots inside the row, plus the row of ds where there is one.
template <typename T, typename G, int kVec, int kSlots>
__device__ __forceinline__ void write_input_gradient(const Pack<T, kVec> (&v)[kSlots], const Pack<G, kVec> (&d)[kSlots],
                                                     const Pack<T, kVec> (&c)[kSlots], float mu, float inv,
                                                     std::int64_t cols, const Pack<T, kVec>* __restrict__ ds,
                                                     Pack<T, kVec>* __restrict__ dx) {
  float sum_g = 0.0f;  // zero slots (dy = weight = 0) add nothing
  float sum_g_xhat = 0.0f;
#pragma unroll
  for (int i = 0; i < kSlots; ++i) add_gradient_sums(v[i], d[i], c[i], mu, inv, sum_g, sum_g_xhat);
  const FloatPair sums = block_sum_pair(sum_g, sum_g_xhat);
  const float mean_g = sums.first / static_cast<float>(cols);
  const float mean_g_xhat = sums.second / static_cast<float>(cols);
  const int packs = static_cast<int>(cols / kVec);
#pragma unroll
  for (int i = 0; i < kSlots; ++i) {
    const int p = slot_pack(i);
    if (p >= packs) break;
    const Pack<T, kVec> g = input_gradient(v[i], d[i], c[i], mu, inv, mean_g, mean_g_xhat);
    dx[p] = ds != nullptr ? summed(g, load_pack(ds + p)) : g;
  }
}

// The backward pass with the row's x, dy and weight in registers: kSlots packs each per thread.
template <typename T, typename G, int kVec, int kSlots>
__global__ void __launch_bounds__(kMaxRegisterRowThreads)
    layernorm_backward_registers_kernel(const G* __restrict__ grad_output, const T* __restrict__ input,
                                        const T* __restrict__ weight, const float* __restrict__ mean,
                                        const float* __restrict__ rstd, const T* __restrict__ grad_sum,
                                        T* __restrict__ grad_input, std::int64_t cols) {
  using P = Pack<T, kVec>;
  using D = Pack<G, kVec>;
  const std::int64_t row = blockIdx.x;
  const int packs = static_cast<int>(cols / kVec);
  P v[kSlots], c[kSlots];
  D d[kSlots];
  load_row_slots(reinterpret_cast<const P*>(input + row * cols), packs, v);
  load_row_slots(reinterpret_cast<const D*>(grad_output + row * cols), packs, d);
  load_row_slots(reinterpret_cast<const P*>(weight), packs, c);
  write_input_gradient(v, d, c, mean[row], rstd[row], cols, optional_row<const P>(grad_sum, row, cols),
                       reinterpret_cast<P*>(grad_input + row * cols));
}

// The backward pass that also sums the parameters' gradients (Note [Parameter gradients in the
// backward pass], block_reduce.cuh): block b takes row segment b of rows_per_segment rows, adds
// dy xhat and dy for its threads' columns in registers, and writes the sums to
// parameter_partials[0, b, :] and [1, b, :].
template <typename T, typename G, int kVec, int kSlots>
__global__ void __launch_bounds__(kMaxSummingRowThreads)
    layernorm_backward_summing_kernel(const G* __restrict__ grad_output, const T* __restrict__ input,
                                      const T* __restrict__ weight, const float* __restrict__ mean,
                                      const float* __restrict__ rstd, const T* __restrict__ grad_sum,
                                      T* __restrict__ grad_input, float* __restrict__ parameter_partials,
                                      std::int64_t rows, std::int64_t cols, std::int64_t rows_per_segment) {
  using P = Pack<T, kVec>;
  using D = Pack<G, kVec>;
  const int packs = static_cast<int>(cols / kVec);
  const D* dy = reinterpret_cast<const D*>(grad_output);
  const P* x = reinterpret_cast<const P*>(input);
  P c[kSlots];
  load_row_slots(reinterpret_cast<const P*>(weight), packs, c);
  float weight_sums[kSlots][kVec] = {};
  float bias_sums[kSlots][kVec] = {};
  const std::int64_t begin = blockIdx.x * rows_per_segment;
  const std::int64_t end = min(rows, begin + rows_per_segment);
  const auto row_gradients = [&](std::int64_t row, const D(&d)[kSlots], const P(&v)[kSlots]) {
    const float mu = mean[row];
    const float inv = rstd[row];
#pragma unroll
    for (int i = 0; i < kSlots; ++i) add_parameter_gradients(v[i], d[i], mu, inv, weight_sums[i], bias_sums[i]);
    write_input_gradient(v, d, c, mu, inv, cols, optional_row<const P>(grad_sum, row, cols),
                         reinterpret_cast<P*>(grad_input + row * cols));
  };
  for_each_segment_row<kSlots>(dy, x, begin, end, packs, row_gradients);
  const std::int64_t segments = gridDim.x;
  store_slot_sums(weight_sums, parameter_partials + blockIdx.x * cols, packs);
  store_slot_sums(bias_sums, parameter_partials + (segments + blockIdx.x) * cols, packs);
}

template <typename T, typename O, typename R>
void forward_typed(const LayerNormParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  // (A null residual and sum pass the alignment tests.)
  const bool vectorised = p.cols % kVec == 0 && aligned16(p.input) && aligned16(p.weight) && aligned16(p.bias) &&
                          aligned_for<Pack<O, kVec>>(p.output) && aligned_for<Pack<R, kVec>>(p.residual) &&
                          aligned16(p.sum);
  const auto* x = static_cast<const T*>(p.input);
  const auto* r = static_cast<const R*>(p.residual);
  const auto* w = static_cast<const T*>(p.weight);
  const auto* b = static_cast<const T*>(p.bias);
  auto* y = static_cast<O*>(p.output);
  auto* s = static_cast<T*>(p.sum);
  const dim3 grid(static_cast<unsigned>(p.rows));
  const int threads = threads_for_row(vectorised ? p.cols / kVec : p.cols);
  if (vectorised && row_fits_registers(p.cols / kVec)) {
    layernorm_forward_registers_kernel<T, O, R, kVec, kRowPacksPerThread>
        <<<grid, threads_for_register_row(p.cols / kVec), 0, stream>>>(x, r, w, b, y, s, p.mean, p.rstd, p.cols,
                                                                       p.eps);
  } else if (vectorised) {
    layernorm_forward_kernel<T, O, R, kVec>
        <<<grid, threads, 0, stream>>>(x, r, w, b, y, s, p.mean, p.rstd, p.cols, p.eps);
  } else {
    layernorm_forward_kernel<T, O, R, 1><<<grid, threads, 0, stream>>>(x, r, w, b, y, s, p.mean, p.rstd, p.cols, p.eps);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <typename T, typename G>
bool vectorised_backward(const LayerNormParams& p) {
  constexpr int kVec = 16 / sizeof(T);
  return p.cols % kVec == 0 && aligned_for<Pack<G, kVec>>(p.grad_output) && aligned16(p.input) &&
         aligned16(p.weight) && aligned16(p.output) && aligned16(p.grad_sum);
}

template <typename T, typename G>
void backward_typed(const LayerNormParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  const bool vectorised = vectorised_backward<T, G>(p);
  const std::int64_t units = vectorised ? p.cols / kVec : p.cols;
  const auto* dy = static_cast<const G*>(p.grad_output);
  const auto* x = static_cast<const T*>(p.input);
  const auto* w = static_cast<const T*>(p.weight);
  const auto* ds = static_cast<const T*>(p.grad_sum);
  auto* dx = static_cast<T*>(p.output);
  const dim3 grid(static_cast<unsigned>(p.rows));
  const int threads = threads_for_row(units);
  if (p.grad_weight != nullptr) {
    ALBION_CHECK(vectorised && row_fits_summing_registers(units), "layernorm backward: the parameters' gradients "
                 "are summed in this pass only for rows that fit registers");
    const std::int64_t segments = p.parameter_segments;
    layernorm_backward_summing_kernel<T, G, kVec, kSummingPacksPerThread>
        <<<static_cast<unsigned>(segments), threads_for_summing_row(units), 0, stream>>>(
            dy, x, w, p.mean, p.rstd, ds, dx, p.parameter_partials, p.rows, p.cols,
            (p.rows + segments - 1) / segments);
    ALBION_CUDA_CHECK(cudaGetLastError());
    const dim3 sum_grid = segment_tile_grid(p.cols, 1);
    add_segments_kernel<><<<sum_grid, segment_tile_block(), 0, stream>>>(p.parameter_partials, segments, p.cols,
                                                                         p.grad_weight);
    ALBION_CUDA_CHECK(cudaGetLastError());
    add_segments_kernel<><<<sum_grid, segment_tile_block(), 0, stream>>>(p.parameter_partials + segments * p.cols,
                                                                         segments, p.cols, p.grad_bias);
  } else if (vectorised && row_fits_registers(units)) {
    layernorm_backward_registers_kernel<T, G, kVec, kRowPacksPerThread>
        <<<grid, threads_for_register_row(units), 0, stream>>>(dy, x, w, p.mean, p.rstd, ds, dx, p.cols);
  } else if (vectorised) {
    layernorm_backward_kernel<T, G, kVec><<<grid, threads, 0, stream>>>(dy, x, w, p.mean, p.rstd, ds, dx, p.cols);
  } else {
    layernorm_backward_kernel<T, G, 1><<<grid, threads, 0, stream>>>(dy, x, w, p.mean, p.rstd, ds, dx, p.cols);
  }
  ALBION_CUDA_CHECK(cudaGetLastError());
}

template <typename T, typename G>
std::int64_t parameter_segments_typed(const LayerNormParams& p, int multiprocessors) {
  constexpr int kVec = 16 / sizeof(T);
  if (!vectorised_backward<T, G>(p) || !row_fits_summing_registers(p.cols / kVec)) return 0;
  const auto kernel = &layernorm_backward_summing_kernel<T, G, kVec, kSummingPacksPerThread>;
  return register_row_segments(p.rows, reinterpret_cast<const void*>(kernel), threads_for_summing_row(p.cols / kVec),
                               multiprocessors);
}

// Calls run(T{}, O{}) with x's type and y's (the forward's) or dy's (the backward's).
template <typename Run>
auto with_types(const LayerNormParams& p, Run run) {
  if (p.dtype == DType::kBFloat16) return run(__nv_bfloat16{}, __nv_bfloat16{});
  if (p.bf16_output) return run(float{}, __nv_bfloat16{});
  return run(float{}, float{});
}

void check_shape(const LayerNormParams& p) {
  ALBION_CHECK(p.rows >= 0 && p.cols > 0 && p.rows <= 0x7fffffff, "layernorm: bad shape ", p.rows, "x", p.cols);
  ALBION_CHECK((p.residual == nullptr) == (p.sum == nullptr), "layernorm: a residual and the sum to write go together");
}

}  // namespace

void launch_layernorm_forward(const LayerNormParams& params, cudaStream_t stream) {
  check_shape(params);
  if (params.rows == 0) return;
  // The residual's type: y's, or bf16 beside fp32 y (bf16_residual).
  if (params.bf16_residual) {
    ALBION_CHECK(params.dtype == DType::kFloat32 && !params.bf16_output && params.residual != nullptr,
                 "layernorm: a bf16 residual beside fp32 x and y only");
    forward_typed<float, float, __nv_bfloat16>(params, stream);
    return;
  }
  with_types(params, [&](auto x, auto y) { forward_typed<decltype(x), decltype(y), decltype(y)>(params, stream); });
}

std::int64_t layernorm_backward_parameter_segments(const LayerNormParams& params, int multiprocessors) {
  if (params.rows <= 0 || params.cols <= 0) return 0;
  return with_types(params, [&](auto x, auto dy) {
    return parameter_segments_typed<decltype(x), decltype(dy)>(params, multiprocessors);
  });
}

void launch_layernorm_backward(const LayerNormParams& params, cudaStream_t stream) {
  check_shape(params);
  ALBION_CHECK(params.grad_weight == nullptr ||
                   (params.grad_bias != nullptr && params.parameter_partials != nullptr &&
                    params.parameter_segments > 0 && params.parameter_segments <= params.rows),
               "layernorm backward: ", params.parameter_segments, " parameter segments for ", params.rows, " rows");
  if (params.rows == 0) return;
  with_types(params, [&](auto x, auto dy) { backward_typed<decltype(x), decltype(dy)>(params, stream); });
}

}  // namespace albion::kernels
