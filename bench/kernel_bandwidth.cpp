// File: bench/kernel_bandwidth.cpp
// Achieved memory bandwidth of each fused kernel against the device's measured copy bandwidth,
// and its speedup over the eager PyTorch composition the runtime would run without it:
//
//   build/bench/kernel_bandwidth [--device cuda|cpu] [--dtype bf16|fp32|both] [--sizes small|all]
//
// One table row per kernel, pass, dtype and size: median time of the fused and the eager version,
// the fused kernel's GB/s counted from the bytes it must move at least (inputs read once, outputs
// written once, RoPE's cos/sin tables once; per-row statistics and [hidden] weights are left
// out, under 0.5% of the traffic at these sizes; the cross-entropy's second read of each row is
// not counted either: it comes from L2 only in part, so its %copy understates the kernel),
// that as a fraction of the copy bandwidth (a device-to-device copy of 1 GiB: 2 bytes moved per
// byte copied), and eager time / fused time. "fwd+bwd" runs autograd through both versions.
// On CUDA each time is the median of CUDA-event timings on the current stream. "small" fits in the
// L2 cache and is launch-bound: it shows overheads, not bandwidth; "large" (268M elements, 0.5 GB
// per bf16 tensor) is the bandwidth figure. The CPU mode exists to check the harness on machines
// without a GPU; its numbers mean little.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cross_entropy/softmax_cross_entropy.h"
#include "kernels/gelu/gelu_bias.h"
#include "kernels/layernorm/layernorm.h"
#include "kernels/norm_grad/norm_parameter_grad.h"
#include "kernels/rmsnorm/rmsnorm.h"
#include "kernels/rope/rope.h"
#include "kernels/swiglu/swiglu.h"
#include "runtime/models/rope.h"
#include "runtime/optim/adamw.h"

namespace {

struct Options {
  at::Device device = at::Device(at::kCUDA, 0);
  std::vector<at::ScalarType> dtypes = {at::kBFloat16, at::kFloat};
  bool all_sizes = true;
};

// Median milliseconds of `run` over `reps` runs after `warmup` runs.
double median_ms(const at::Device& device, const std::function<void()>& run, int reps = 20, int warmup = 3) {
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> times;
  if (device.is_cuda()) {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream().stream();
    cudaEvent_t start = nullptr;
    cudaEvent_t stop = nullptr;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    for (int i = 0; i < reps; ++i) {
      cudaEventRecord(start, stream);
      run();
      cudaEventRecord(stop, stream);
      cudaEventSynchronize(stop);
      float ms = 0;
      cudaEventElapsedTime(&ms, start, stop);
      times.push_back(ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  } else {
    for (int i = 0; i < reps; ++i) {
      const auto start = std::chrono::steady_clock::now();
      run();
      times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    }
  }
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

struct Shape {
  const char* name;
  std::int64_t rows;
  std::int64_t hidden;
};

class Report {
 public:
  explicit Report(double copy_gb_per_s) : copy_(copy_gb_per_s) {
    std::printf("%-10s %-8s %-5s %-6s %13s %10s %10s %8s %7s %8s\n", "kernel", "pass", "dtype", "size", "elements",
                "fused ms", "eager ms", "GB/s", "%copy", "speedup");
  }
  void row(const char* kernel, const char* pass, at::ScalarType dtype, const char* size, std::int64_t elements,
           double bytes, double fused_ms, double eager_ms) const {
    const double gb_per_s = bytes / (fused_ms * 1e-3) / 1e9;
    std::printf("%-10s %-8s %-5s %-6s %13lld %10.4f %10.4f %8.1f %6.1f%% %7.2fx\n", kernel, pass,
                dtype == at::kBFloat16 ? "bf16" : "fp32", size, static_cast<long long>(elements), fused_ms, eager_ms,
                gb_per_s, 100.0 * gb_per_s / copy_, eager_ms / fused_ms);
    std::fflush(stdout);
  }

 private:
  double copy_;
};

double copy_bandwidth(const at::Device& device) {
  const std::int64_t bytes = device.is_cuda() ? (std::int64_t{1} << 30) : (std::int64_t{1} << 27);
  at::Tensor source = at::ones({bytes / 4}, at::TensorOptions().device(device));
  at::Tensor target = at::empty_like(source);
  const double ms = median_ms(device, [&] { target.copy_(source); });
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
}

// Autograd through `forward`, seeded with `grad`: one forward and one backward.
void forward_backward(const std::function<at::Tensor()>& forward, const at::Tensor& grad,
                      const std::vector<at::Tensor>& inputs) {
  const at::Tensor out = forward();
  torch::autograd::grad({out}, inputs, {grad});
}

// The row-wise kernels: norms, activations, rotary embedding.
void bench_rowwise(const Options& options, const Report& report, const std::vector<Shape>& shapes) {
  const double eps = 1e-5;
  for (const at::ScalarType dtype : options.dtypes) {
    const at::TensorOptions t = at::TensorOptions().device(options.device).dtype(dtype);
    const double e = static_cast<double>(at::elementSize(dtype));
    for (const Shape& s : shapes) {
      const std::int64_t n = s.rows * s.hidden;
      const double elements = static_cast<double>(n);
      at::Tensor x = at::randn({s.rows, s.hidden}, t).requires_grad_();
      at::Tensor dy = at::randn({s.rows, s.hidden}, t);
      at::Tensor weight = (at::rand({s.hidden}, t) + 0.5).requires_grad_();
      at::Tensor bias = (at::randn({s.hidden}, t) * 0.1).requires_grad_();
      // RMSNorm's eager version as Hugging Face's LlamaRMSNorm: fp32 statistics, cast back, times weight.
      const auto rms_eager_of = [&](const at::Tensor& input) {
        const at::Tensor xf = input.to(at::kFloat);
        return weight * (xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(dtype);
      };
      const auto rms_eager = [&] { return rms_eager_of(x); };
      {  // forward only, as under no_grad in evaluation
        at::NoGradGuard no_grad;
        report.row("rmsnorm", "fwd", dtype, s.name, n, 2 * e * elements,
                   median_ms(options.device, [&] { albion::kernels::rmsnorm_forward(x, weight, eps); }),
                   median_ms(options.device, rms_eager));
        // LayerNorm; eager is torch's own (fused) layer_norm, as GPT-2 runs without our kernels:
        // it moves the same bytes, so about 1x is the ceiling here, not 2x.
        report.row("layernorm", "fwd", dtype, s.name, n, 2 * e * elements,
                   median_ms(options.device, [&] { albion::kernels::layernorm_forward_with_stats(x, weight, bias, eps); }),
                   median_ms(options.device, [&] { at::layer_norm(x, {s.hidden}, weight, bias, eps); }));
        // The residual add before the norm (x + r, then LayerNorm: GPT-2's norms): reads x and r, writes
        // the sum and y. Eager adds, then normalises: 5 passes against 4, so 1.25x at most.
        report.row("add+ln", "fwd", dtype, s.name, n, 4 * e * elements,
                   median_ms(options.device, [&] { albion::kernels::add_layernorm(x, dy, weight, bias, eps); }),
                   median_ms(options.device, [&] { at::layer_norm(x + dy, {s.hidden}, weight, bias, eps); }));
        // The same before RMSNorm (Llama's norms); eager adds, then runs the composition above.
        report.row("add+rms", "fwd", dtype, s.name, n, 4 * e * elements,
                   median_ms(options.device, [&] { albion::kernels::add_rmsnorm(x, dy, weight, eps); }),
                   median_ms(options.device, [&] { rms_eager_of(x + dy); }));
        // bias + GELU-tanh: torch adds, then applies its GELU kernel (4 passes over [rows, hidden]
        // against 2: a 2x ceiling).
        report.row("gelu_bias", "fwd", dtype, s.name, n, 2 * e * elements,
                   median_ms(options.device, [&] { albion::kernels::gelu_bias_forward(x, bias); }),
                   median_ms(options.device, [&] { at::gelu(x + bias, "tanh"); }));
        // SwiGLU over gate and up of this shape each (eager silu, then mul: 5 passes against 3, so
        // 1.67x at most).
        report.row("swiglu", "fwd", dtype, s.name, n, 3 * e * elements,
                   median_ms(options.device, [&] { albion::kernels::swiglu_forward(x, dy); }),
                   median_ms(options.device, [&] { at::silu(x) * dy; }));
        // Rotary embedding on [1, rows, hidden / 128, 128], the layout the projections produce;
        // eager is the model's own composition on the heads-first view.
        const std::int64_t head_dim = 128;
        const std::int64_t heads = s.hidden / head_dim;
        if (heads > 0 && s.hidden % head_dim == 0) {
          const at::Tensor angles =
              at::arange(s.rows, at::TensorOptions().device(options.device)).unsqueeze(1) *
              at::rand({head_dim / 2}, at::TensorOptions().device(options.device));
          const at::Tensor cos = at::cat({angles.cos(), angles.cos()}, 1).contiguous();
          const at::Tensor sin = at::cat({angles.sin(), angles.sin()}, 1).contiguous();
          const at::Tensor q = x.detach().view({1, s.rows, heads, head_dim});
          const double tables = static_cast<double>(s.rows * head_dim) * 4;  // half of cos and of sin, fp32
          report.row("rope", "fwd", dtype, s.name, n, 2 * e * elements + tables,
                     median_ms(options.device, [&] { albion::kernels::rope(q, cos, sin); }),
                     median_ms(options.device, [&] { albion::models::apply_rotary(q.transpose(1, 2), cos, sin); }));
        }
      }

      // fwd+bwd through autograd; the fused backward passes move (read dy, inputs; write grads; the
      // norms sum their parameter gradients in the same pass where rows fit registers, and
      // otherwise read dy and x once more for them, not counted). Eager's passes
      // bound the speedup where the bytes decide: SwiGLU 14 against 8 (1.75x); bias + GELU 8
      // against 5 (1.6x: eager reads the input gradient once more for the bias gradient, ours sums
      // it in the backward pass); LayerNorm 7 against 5 (1.4x: torch's backward reads dy and x for
      // the input's gradient, then again for the weight's and the bias's), or 1x where ours sums
      // the parameter gradients apart too.
      const double rms_eager_ms = median_ms(options.device, [&] { forward_backward(rms_eager, dy, {x, weight}); });
      report.row("rmsnorm", "fwd+bwd", dtype, s.name, n, 5 * e * elements,
                 median_ms(options.device, [&] {
                   forward_backward([&] { return albion::kernels::rmsnorm(x, weight, eps); }, dy, {x, weight});
                 }),
                 rms_eager_ms);
      const double ln_eager_ms = median_ms(options.device, [&] {
        forward_backward([&] { return at::layer_norm(x, {s.hidden}, weight, bias, eps); }, dy, {x, weight, bias});
      });
      report.row("layernorm", "fwd+bwd", dtype, s.name, n, 5 * e * elements,
                 median_ms(options.device, [&] {
                   forward_backward([&] { return albion::kernels::layernorm(x, weight, bias, eps); }, dy,
                                    {x, weight, bias});
                 }),
                 ln_eager_ms);
      // The residual add and the norm, both outputs read: the backward reads dy, the sum and the sum's
      // other gradient and writes dx (8 passes in all). Eager's add, its sum of the two gradients
      // and its second read for the parameter gradients come apart: 13 against 8 (1.625x), or 10
      // where ours sums the parameter gradients apart too (1.3x).
      at::Tensor residual = at::randn({s.rows, s.hidden}, t).requires_grad_();
      const auto add_norm_backward = [&](const at::Tensor& sum, const at::Tensor& normed,
                                         const torch::autograd::variable_list& inputs) {
        torch::autograd::grad({sum, normed}, inputs, {dy, dy});
      };
      report.row("add+ln", "fwd+bwd", dtype, s.name, n, 8 * e * elements,
                 median_ms(options.device, [&] {
                   auto [sum, normed] = albion::kernels::add_layernorm(x, residual, weight, bias, eps);
                   add_norm_backward(sum, normed, {x, residual, weight, bias});
                 }),
                 median_ms(options.device, [&] {
                   const at::Tensor sum = x + residual;
                   const at::Tensor normed = at::layer_norm(sum, {s.hidden}, weight, bias, eps);
                   add_norm_backward(sum, normed, {x, residual, weight, bias});
                 }));
      report.row("add+rms", "fwd+bwd", dtype, s.name, n, 8 * e * elements,
                 median_ms(options.device, [&] {
                   auto [sum, normed] = albion::kernels::add_rmsnorm(x, residual, weight, eps);
                   add_norm_backward(sum, normed, {x, residual, weight});
                 }),
                 median_ms(options.device, [&] {
                   const at::Tensor sum = x + residual;
                   add_norm_backward(sum, rms_eager_of(sum), {x, residual, weight});
                 }));
      if (dtype == at::kFloat) {
        // Llama's input_layernorm under bf16 autocast: fp32 x normalised for the query, key and value
        // projections, each reading a bf16 operand (bf16 gradients back). "rms-3ops" writes the three
        // operands from the norm's kernel and sums their gradients in its backward (Note [One operand
        // per product], kernels/rmsnorm/rmsnorm_torch.cpp); "rms+casts" is the fp32 kernel with a cast
        // per product, as before it. Both against the eager composition with the same casts. Counted:
        // read x, write 3 bf16 operands; read their gradients and x, write dx (24 bytes an element).
        const std::vector<at::Tensor> operand_grads(3, dy.to(at::kBFloat16));
        // Three casts of y, one per product, as autocast makes them.
        const auto operands_backward = [&](const at::Tensor& y) {
          torch::autograd::grad({y.to(at::kBFloat16), y.to(at::kBFloat16), y.to(at::kBFloat16)}, {x, weight},
                                operand_grads);
        };
        const double operands_eager_ms = median_ms(options.device, [&] { operands_backward(rms_eager()); });
        report.row("rms-3ops", "fwd+bwd", dtype, s.name, n, 24.0 * elements, median_ms(options.device, [&] {
                     torch::autograd::grad(albion::kernels::rmsnorm_operands(x, weight, eps, 3), {x, weight},
                                           operand_grads);
                   }),
                   operands_eager_ms);
        report.row("rms+casts", "fwd+bwd", dtype, s.name, n, 24.0 * elements, median_ms(options.device, [&] {
                     operands_backward(albion::kernels::rmsnorm(x, weight, eps));
                   }),
                   operands_eager_ms);
      }
      if (options.device.is_cuda()) {
        // The norms as before their backward summed the parameter gradients: a second kernel reads
        // dy and x again for them (still the path of rows over 1,024 packs).
        report.row("rms-apart", "fwd+bwd", dtype, s.name, n, 5 * e * elements, median_ms(options.device, [&] {
                     at::NoGradGuard no_grad;
                     auto [y, inv_rms] = albion::kernels::rmsnorm_forward_with_stats(x, weight, eps);
                     albion::kernels::rmsnorm_backward(dy, x, weight, inv_rms, /*weight_gradient=*/false);
                     albion::kernels::norm_parameter_grads(dy, x, at::Tensor(), inv_rms, /*with_bias=*/false);
                   }),
                   rms_eager_ms);
        report.row("ln-apart", "fwd+bwd", dtype, s.name, n, 5 * e * elements, median_ms(options.device, [&] {
                     at::NoGradGuard no_grad;
                     auto [y, mean, rstd] = albion::kernels::layernorm_forward_with_stats(x, weight, bias, eps);
                     albion::kernels::layernorm_backward(dy, x, weight, mean, rstd, /*parameter_gradients=*/false);
                     albion::kernels::norm_parameter_grads(dy, x, mean, rstd, /*with_bias=*/true);
                   }),
                   ln_eager_ms);
      }
      report.row("gelu_bias", "fwd+bwd", dtype, s.name, n, 5 * e * elements,
                 median_ms(options.device, [&] {
                   forward_backward([&] { return albion::kernels::gelu_bias(x, bias); }, dy, {x, bias});
                 }),
                 median_ms(options.device, [&] {
                   forward_backward([&] { return at::gelu(x + bias, "tanh"); }, dy, {x, bias});
                 }));
      at::Tensor up = at::randn({s.rows, s.hidden}, t).requires_grad_();
      report.row("swiglu", "fwd+bwd", dtype, s.name, n, 8 * e * elements,
                 median_ms(options.device, [&] {
                   forward_backward([&] { return albion::kernels::swiglu(x, up); }, dy, {x, up});
                 }),
                 median_ms(options.device, [&] {
                   forward_backward([&] { return at::silu(x) * up; }, dy, {x, up});
                 }));
    }
  }
}

// The optimizer-side kernels over a GPT-2 124M-like list of fp32 tensors.
void bench_multi_tensor(const Options& options, const Report& report, bool small) {
  std::vector<std::vector<std::int64_t>> shapes = {{50304, 768}, {1024, 768}};
  for (int layer = 0; layer < (small ? 1 : 12); ++layer) {
    for (const std::vector<std::int64_t>& shape : std::vector<std::vector<std::int64_t>>{
             {768}, {768}, {2304, 768}, {2304}, {768, 768}, {768}, {768}, {768}, {3072, 768}, {3072}, {768, 3072},
             {768}}) {
      shapes.push_back(shape);
    }
  }
  if (small) shapes[0] = {4096, 768};
  // The optimizer itself, fused and not (model.fused_kernels), each over its own copy of the state.
  const at::TensorOptions t = at::TensorOptions().device(options.device);
  std::vector<albion::optim::OptimizedParameter> fused_parameters;
  std::vector<albion::optim::OptimizedParameter> eager_parameters;
  std::int64_t elements = 0;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    for (auto* list : {&fused_parameters, &eager_parameters}) {
      albion::optim::OptimizedParameter p;
      p.name = std::to_string(i);
      p.parameter = at::randn(shapes[i], t);
      p.parameter.mutable_grad() = at::randn(shapes[i], t) * 1e-3;
      p.decayed = shapes[i].size() > 1;
      list->push_back(std::move(p));
    }
    elements += fused_parameters.back().parameter.numel();
  }
  albion::optim::AdamWOptions adamw_options;
  adamw_options.fused = true;
  albion::optim::AdamW fused(fused_parameters, adamw_options);
  adamw_options.fused = false;
  albion::optim::AdamW eager(eager_parameters, adamw_options);
  const char* size = small ? "small" : "124M";
  const double n = static_cast<double>(elements);
  at::NoGradGuard no_grad;
  // Timed as the training step runs them: queued with the host ahead of the device and nothing
  // read back (Note [Steps read one late]), per call of kQueued calls queued back to back. One
  // call alone also timed the host building its chunk table with the device idle, and the norm's
  // read of its result, which the step no longer makes.
  constexpr int kQueued = 8;
  const auto queued_ms = [&](const std::function<void()>& call) {
    return median_ms(options.device, [&] {
             for (int i = 0; i < kQueued; ++i) call();
           }) / kQueued;
  };
  // AdamW: reads p, g, m, v and writes p, m, v, fp32: 28 bytes per element.
  report.row("adamw", "step", at::kFloat, size, elements, 28 * n, queued_ms([&] { fused.step(6e-4); }),
             queued_ms([&] { eager.step(6e-4); }));
  // The squared norm reads every gradient once: 4 bytes per element.
  report.row("grad_norm", "reduce", at::kFloat, size, elements, 4 * n,
             queued_ms([&] { albion::optim::squared_gradient_norm(fused.parameters(), true); }),
             queued_ms([&] { albion::optim::squared_gradient_norm(eager.parameters(), false); }));
}

// The LM head's softmax cross-entropy on one chunk of logits: loss only, and loss with the
// gradient written over the logits (what linear_cross_entropy_sum runs per chunk), against torch's
// cross_entropy on fp32 logits with autograd back to the logits (what autocast runs eagerly).
// The fused version works in place, so later repetitions see gradients as logits: same cost.
void bench_cross_entropy(const Options& options, const Report& report, bool all_sizes) {
  std::vector<Shape> shapes = {{"small", 64, 50257}};
  if (all_sizes) shapes.push_back({"large", 4096, 128256});
  for (const at::ScalarType dtype : options.dtypes) {
    const at::TensorOptions t = at::TensorOptions().device(options.device).dtype(dtype);
    const double e = static_cast<double>(at::elementSize(dtype));
    for (const Shape& s : shapes) {
      const std::int64_t n = s.rows * s.hidden;  // rows x vocabulary
      at::Tensor logits = at::randn({s.rows, s.hidden}, t) * 3;
      const at::Tensor targets = at::randint(s.hidden, {s.rows}, t.dtype(at::kLong));
      const auto eager_loss = [&](const at::Tensor& x) {
        return at::cross_entropy_loss(x.to(at::kFloat), targets, {}, at::Reduction::Sum);
      };
      {
        at::NoGradGuard no_grad;
        report.row("xent", "fwd", dtype, s.name, n, e * static_cast<double>(n),
                   median_ms(options.device,
                             [&] { albion::kernels::softmax_cross_entropy_(logits, targets, -100, false); }),
                   median_ms(options.device, [&] { eager_loss(logits); }));
      }
      at::Tensor leaf = logits.detach().clone().requires_grad_();
      const at::Tensor one = at::ones({}, t.dtype(at::kFloat));
      const double eager_ms =
          median_ms(options.device, [&] { forward_backward([&] { return eager_loss(leaf); }, one, {leaf}); });
      report.row("xent", "fwd+bwd", dtype, s.name, n, 2 * e * static_cast<double>(n),
                 median_ms(options.device,
                           [&] { albion::kernels::softmax_cross_entropy_(logits, targets, -100, true); }),
                 eager_ms);
      // For comparison: the looping kernel, a block per row (what ran at these sizes before rows
      // were held in a cluster's registers: Note [A row held in a cluster's registers]).
      if (options.device.is_cuda()) {
        report.row("xent-rows", "fwd+bwd", dtype, s.name, n, 2 * e * static_cast<double>(n),
                   median_ms(options.device,
                             [&] { albion::kernels::softmax_cross_entropy_(logits, targets, -100, true, s.rows); }),
                   eager_ms);
      }
      // A vocabulary cut over ranks, one rank's chunk without its two all-reduces (Note [A softmax
      // over every rank's columns]): the rows' logsumexps, then the gradient from them, 3 passes
      // counted; eager is the torch ops that path runs without the kernels.
      const at::Tensor no_target = at::full_like(targets, -1);
      report.row("xent-split", "fwd+bwd", dtype, s.name, n, 3 * e * static_cast<double>(n),
                 median_ms(options.device,
                           [&] {
                             const at::Tensor lse = albion::kernels::softmax_logsumexp(logits, targets, -100);
                             albion::kernels::softmax_gradient_(logits, no_target, lse);
                           }),
                 median_ms(options.device, [&] {
                   at::Tensor x = logits.to(at::kFloat);
                   const at::Tensor max = std::get<0>(x.max(-1, /*keepdim=*/true));
                   x.sub_(max).exp_();
                   const at::Tensor sum = x.sum(-1, /*keepdim=*/true);
                   x.div_(sum).mul_(sum.isfinite());
                   return x.to(dtype);
                 }));
    }
  }
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--device cuda|cpu] [--dtype bf16|fp32|both] [--sizes small|all]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) return usage(argv[0]);
    const std::string value = argv[++i];
    if (arg == "--device" && (value == "cuda" || value == "cpu")) {
      options.device = value == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
    } else if (arg == "--dtype" && value == "bf16") {
      options.dtypes = {at::kBFloat16};
    } else if (arg == "--dtype" && value == "fp32") {
      options.dtypes = {at::kFloat};
    } else if (arg == "--dtype" && value == "both") {
      options.dtypes = {at::kBFloat16, at::kFloat};
    } else if (arg == "--sizes" && (value == "small" || value == "all")) {
      options.all_sizes = value == "all";
    } else {
      return usage(argv[0]);
    }
  }
  if (options.device.is_cuda() && c10::cuda::device_count() == 0) {
    std::fprintf(stderr, "kernel_bandwidth: no CUDA device (use --device cpu to check the harness)\n");
    return 1;
  }
  // One line, not torch's backtrace, should a run fail (out of memory, say) in the GPU check's log.
  try {
    at::manual_seed(0);
    const double copy = copy_bandwidth(options.device);
    std::printf("device %s, copy bandwidth %.1f GB/s (device-to-device copy, read + write)\n",
                options.device.str().c_str(), copy);
    const Report report(copy);
    std::vector<Shape> shapes = {{"small", 512, 768}};
    if (options.all_sizes) {
      shapes.push_back({"medium", 8192, 4096});
      shapes.push_back({"large", 32768, 8192});
    }
    bench_rowwise(options, report, shapes);
    bench_cross_entropy(options, report, options.all_sizes);
    bench_multi_tensor(options, report, !options.all_sizes);
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "kernel_bandwidth: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kernel_bandwidth: %s\n", e.what());
    return 1;
  }
  return 0;
}
