// File: kernels/layernorm/layernorm_torch.cpp
// Torch layer of LayerNorm: checks, dispatch, autograd.
//
// Note [A norm writes its product's operand]
// Under bf16 autocast the residual stream is fp32, and a pre-norm block's norm output feeds a
// matrix product that autocast casts to bf16: the norm wrote fp32 (4 bytes an element), the cast
// read them and wrote 2, and in the backward pass the cast's gradient widened the product's bf16
// input gradient to fp32 (2 read, 4 written) for the norm to read (4). Written in bf16 by the norm
// itself, rounded once as the cast rounds, and its gradient read in bf16 (widened exactly, as the
// cast's backward widens it), the same values and gradients cost 16 bytes an element less, and a
// kernel fewer a norm each way. Only for an output that one product reads and nothing else:
// autograd would sum two readers' bf16 gradients in bf16, where the casts' backward summed them in
// fp32 (models::LayerNorm::forward_into_product). For several products, RMSNorm writes one operand
// each (Note [One operand per product], kernels/rmsnorm/rmsnorm_torch.cpp).
//
// Note [The residual add in the norm]
// A pre-norm transformer adds each branch's output a to the residual stream x, and a norm reads
// the sum: h = x + a, then LayerNorm(h) (GPT-2's ln_2 after the attention; the next block's ln_1,
// or the final norm, after the MLP). Apart, the add reads x and a and writes h, and the norm reads
// h again; in the backward pass autograd sums h's two gradients (the norm's, and that of h's other
// reader, the next add) in a kernel of its own. add_layernorm's kernel reads x and a, writes h (for
// its other reader and for the backward pass) and normalises it from registers; its backward adds
// h's other gradient to dx as it writes dx. h is rounded to x's dtype before the norm reads it,
// and dx before the other gradient is added, as the separate kernels round them: the same bits,
// for 4 bytes an element less forward and 8 backward (an fp32 stream), and a kernel fewer each way.
// The residual comes in the norm output's dtype, or in bf16 beside an fp32 stream and output: under
// bf16 autocast a branch's last product is bf16, and the norm writes bf16 for a lone bf16 product,
// fp32 otherwise (several readers, or the final norm for the LM head). RMSNorm does the same for
// Llama (add_rmsnorm, kernels/rmsnorm/: post_attention_layernorm, the next input_layernorm, the final
// norm), with its residual in x's dtype or bf16 beside fp32 x.
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/common/cpu_dispatch.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/layernorm/layernorm.cuh"
#include "kernels/layernorm/layernorm.h"
#include "kernels/norm_grad/norm_parameter_grad.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// The output's (and so the output gradient's) dtype: input's, or bf16 for fp32 input.
bool output_dtype_allowed(const at::Tensor& input, at::ScalarType type) {
  return type == input.scalar_type() || (type == at::kBFloat16 && input.scalar_type() == at::kFloat);
}

std::int64_t check_operands(const at::Tensor& input, const at::Tensor& weight) {
  check_same_device_and_dtype(input, weight, "layernorm input", "layernorm weight");
  check_contiguous(input, "layernorm input");
  check_contiguous(weight, "layernorm weight");
  ALBION_CHECK_AS(UsageError, input.dim() >= 1 && weight.dim() == 1 && weight.size(0) == input.size(-1),
                  "layernorm: weight ", weight.sizes(), " does not match input ", input.sizes());
  ALBION_CHECK_AS(UsageError, at::isFloatingType(input.scalar_type()), "layernorm: input of dtype ",
                  input.scalar_type(), " is not floating point");
  ALBION_CHECK_AS(UsageError, input.is_cuda() || input.is_cpu(), "layernorm: unsupported device ", input.device());
  if (runs_kernels(input)) kernel_dtype(input, "layernorm input");
  return input.size(-1) == 0 ? 0 : input.numel() / input.size(-1);
}

struct ForwardResult {
  at::Tensor output;
  at::Tensor mean;
  at::Tensor rstd;
  at::Tensor sum;  // input + residual, where there is a residual
};

// layernorm_forward_with_stats of input, or of input + residual where `residual` is defined (the
// kernels only: Note [The residual add in the norm]).
ForwardResult forward_with_stats(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                                 const at::Tensor& bias, double eps, std::optional<at::ScalarType> output_dtype) {
  const std::int64_t rows = check_operands(input, weight);
  const at::ScalarType output_type = output_dtype.value_or(input.scalar_type());
  ALBION_CHECK_AS(UsageError, output_dtype_allowed(input, output_type), "layernorm: output dtype ", output_type,
                  " for input of dtype ", input.scalar_type(), " (the input's, or bf16 for fp32 input)");
  ALBION_CHECK(!residual.defined() || runs_kernels(input), "layernorm: the residual add runs in the kernels only");
  check_same_device_and_dtype(input, bias, "layernorm input", "layernorm bias");
  check_contiguous(bias, "layernorm bias");
  ALBION_CHECK_AS(UsageError, bias.sizes() == weight.sizes(), "layernorm: bias ", bias.sizes(), " vs weight ",
                  weight.sizes());
  ALBION_CHECK_AS(UsageError, eps > 0, "layernorm: eps must be positive, got ", eps);
  const std::int64_t cols = input.size(-1);
  at::Tensor output = at::empty_like(input, input.options().dtype(output_type));
  at::Tensor mean = at::empty({rows}, input.options().dtype(statistics_type(input)));
  at::Tensor rstd = at::empty_like(mean);
  const at::Tensor sum = residual.defined() ? at::empty_like(input) : at::Tensor();
  if (rows == 0) return {output, mean, rstd, sum};
  if (runs_kernels(input)) {
    const KernelLaunch launch(input.device());
    LayerNormParams p;
    p.input = input.data_ptr();
    p.weight = weight.data_ptr();
    p.bias = bias.data_ptr();
    p.output = output.data_ptr();
    p.mean = mean.data_ptr<float>();
    p.rstd = rstd.data_ptr<float>();
    p.rows = rows;
    p.cols = cols;
    p.eps = static_cast<float>(eps);
    p.dtype = kernel_dtype(input, "layernorm input");
    p.bf16_output = output_type != input.scalar_type();
    if (residual.defined()) {
      p.residual = residual.data_ptr();
      p.sum = sum.data_ptr();
      p.bf16_residual = residual.scalar_type() != output_type;
    }
    launch_layernorm_forward(p, launch.stream());
    return {output, mean, rstd, sum};
  }
  const auto run = [&](auto tag) {
    using T = decltype(tag);
    const at::ScalarType type = c10::CppTypeToScalarType<T>::value;
    at::Tensor x = input.to(type).contiguous(), w = weight.to(type).contiguous(), b = bias.to(type).contiguous();
    at::Tensor y = at::empty_like(x);
    layernorm_forward_reference<T>(x.data_ptr<T>(), w.data_ptr<T>(), b.data_ptr<T>(), y.data_ptr<T>(),
                                   mean.data_ptr<T>(), rstd.data_ptr<T>(), rows, cols, static_cast<T>(eps));
    output.copy_(y);  // rounds to output_dtype once
  };
  with_reference_type(input, run);
  return {output, mean, rstd, sum};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> layernorm_forward_with_stats(
    const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, double eps,
    std::optional<at::ScalarType> output_dtype) {
  ForwardResult result = forward_with_stats(input, at::Tensor(), weight, bias, eps, output_dtype);
  return {result.output, result.mean, result.rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> layernorm_backward(const at::Tensor& grad_output,
                                                                  const at::Tensor& input, const at::Tensor& weight,
                                                                  const at::Tensor& mean, const at::Tensor& rstd,
                                                                  bool parameter_gradients,
                                                                  const at::Tensor& grad_sum) {
  const std::int64_t rows = check_operands(input, weight);
  ALBION_CHECK_AS(UsageError,
                  grad_output.device() == input.device() && output_dtype_allowed(input, grad_output.scalar_type()),
                  "layernorm backward: grad_output (", grad_output.scalar_type(), " on ", grad_output.device(),
                  ") must be on input's device, in input's dtype (", input.scalar_type(), ") or bf16 for fp32 input");
  const bool bf16_grad_output = grad_output.scalar_type() != input.scalar_type();
  check_contiguous(grad_output, "layernorm grad_output");
  const auto statistics_match = [&](const at::Tensor& t) {
    return t.numel() == rows && t.scalar_type() == statistics_type(input) && t.device() == input.device() &&
           t.is_contiguous();
  };
  ALBION_CHECK_AS(UsageError, grad_output.sizes() == input.sizes() && statistics_match(mean) && statistics_match(rstd),
                  "layernorm backward: grad_output or statistics (", rows, " contiguous ",
                  statistics_type(input), " values each) do not match input ", input.sizes(), " on ",
                  input.device());
  if (grad_sum.defined()) check_contiguous_like(grad_sum, input, "layernorm backward: grad_sum");
  const std::int64_t cols = input.size(-1);
  at::Tensor grad_input = at::empty_like(input);
  const auto with_parameters_apart = [&]() -> std::tuple<at::Tensor, at::Tensor, at::Tensor> {
    if (!parameter_gradients) return {grad_input, at::Tensor(), at::Tensor()};
    // The separate sum reads one dtype: a bf16 dy is widened first (exactly), for rows too long to
    // sum in the input gradient's pass.
    auto [grad_weight, grad_bias] =
        norm_parameter_grads(grad_output.to(input.scalar_type()), input, mean, rstd, /*with_bias=*/true);
    return {grad_input, grad_weight, grad_bias};
  };
  if (rows == 0) return with_parameters_apart();
  if (runs_kernels(input)) {
    const KernelLaunch launch(input.device());
    LayerNormParams p;
    p.input = input.data_ptr();
    p.weight = weight.data_ptr();
    p.grad_output = grad_output.data_ptr();
    p.output = grad_input.data_ptr();
    p.mean = mean.data_ptr<float>();
    p.rstd = rstd.data_ptr<float>();
    p.rows = rows;
    p.cols = cols;
    p.dtype = kernel_dtype(input, "layernorm input");
    p.bf16_output = bf16_grad_output;
    p.grad_sum = grad_sum.defined() ? grad_sum.data_ptr() : nullptr;
    const std::int64_t segments =
        parameter_gradients ? layernorm_backward_parameter_segments(p, multiprocessor_count(input.device())) : 0;
    if (segments == 0) {
      launch_layernorm_backward(p, launch.stream());
      return with_parameters_apart();
    }
    // Summed in the same pass.
    at::Tensor grad_weight = at::empty({cols}, rstd.options());
    at::Tensor grad_bias = at::empty({cols}, rstd.options());
    const at::Tensor partials = at::empty({2, segments, cols}, rstd.options());
    p.grad_weight = grad_weight.data_ptr<float>();
    p.grad_bias = grad_bias.data_ptr<float>();
    p.parameter_partials = partials.data_ptr<float>();
    p.parameter_segments = segments;
    launch_layernorm_backward(p, launch.stream());
    return {grad_input, grad_weight, grad_bias};
  }
  const auto run = [&](auto tag) {
    using T = decltype(tag);
    const at::ScalarType type = c10::CppTypeToScalarType<T>::value;
    at::Tensor dy = grad_output.to(type).contiguous(), x = input.to(type).contiguous(), w = weight.to(type).contiguous();
    at::Tensor dx = at::empty_like(x);
    layernorm_backward_reference<T>(dy.data_ptr<T>(), x.data_ptr<T>(), w.data_ptr<T>(), mean.data_ptr<T>(),
                                    rstd.data_ptr<T>(), dx.data_ptr<T>(), rows, cols);
    grad_input.copy_(dx);
    if (grad_sum.defined()) grad_input.add_(grad_sum);  // rounded once more, as the kernel rounds
  };
  with_reference_type(input, run);
  return with_parameters_apart();
}

namespace {

// The gradients of a norm's input (the normalised tensor, `input`: x, or x + r), weight and bias
// from the saved tensors {input, weight, mean, rstd}, the weight and bias being inputs
// `weight_index` and the next of the autograd function; `grad_sum` (may be undefined): the input's
// gradient from its other reader, added to the input's. Undefined where not wanted.
std::tuple<at::Tensor, at::Tensor, at::Tensor> norm_gradients(torch::autograd::AutogradContext* context,
                                                              const at::Tensor& grad_output, const at::Tensor& grad_sum,
                                                              bool input_gradient, int weight_index) {
  const torch::autograd::variable_list saved = context->get_saved_variables();
  const bool weight_gradient = context->needs_input_grad(weight_index);
  const bool bias_gradient = context->needs_input_grad(weight_index + 1);
  const bool parameter_gradients = weight_gradient || bias_gradient;
  const at::Tensor& input = saved[0];
  const at::Tensor& weight = saved[1];
  const at::Tensor& mean = saved[2];
  const at::Tensor& rstd = saved[3];
  at::Tensor grad_input, grad_weight, grad_bias;
  if (input_gradient) {
    std::tie(grad_input, grad_weight, grad_bias) =
        layernorm_backward(grad_output, input, weight, mean, rstd, parameter_gradients, grad_sum);
  } else if (parameter_gradients) {  // neither: a frozen norm, as in fine-tuning
    std::tie(grad_weight, grad_bias) =
        norm_parameter_grads(grad_output.to(input.scalar_type()), input, mean, rstd, /*with_bias=*/true);
  }
  const auto wanted = [&](bool needed, const at::Tensor& gradient) {
    return needed ? gradient.to(weight.scalar_type()) : at::Tensor();
  };
  return {grad_input, wanted(weight_gradient, grad_weight), wanted(bias_gradient, grad_bias)};
}

class LayerNormFunction : public torch::autograd::Function<LayerNormFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& input,
                            const at::Tensor& weight, const at::Tensor& bias, double eps,
                            std::optional<at::ScalarType> output_dtype) {
    auto [output, mean, rstd] = layernorm_forward_with_stats(input, weight, bias, eps, output_dtype);
    context->save_for_backward({input, weight, mean, rstd});
    return output;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    auto [grad_input, grad_weight, grad_bias] = norm_gradients(context, grads[0].contiguous(), at::Tensor(),
                                                               context->needs_input_grad(0), /*weight_index=*/1);
    return {grad_input, grad_weight, grad_bias, at::Tensor(), at::Tensor()};
  }
};

// {input + residual, its norm} in one kernel each way (Note [The residual add in the norm]).
class AddLayerNormFunction : public torch::autograd::Function<AddLayerNormFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* context, const at::Tensor& input,
                                                const at::Tensor& residual, const at::Tensor& weight,
                                                const at::Tensor& bias, double eps,
                                                std::optional<at::ScalarType> output_dtype) {
    ForwardResult result = forward_with_stats(input, residual, weight, bias, eps, output_dtype);
    context->save_for_backward({result.sum, weight, result.mean, result.rstd});
    context->set_materialize_grads(false);  // an output nothing read: no zeros to add
    return {result.sum, result.output};
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    // A sum or a norm nothing read has no gradient (undefined).
    const at::Tensor grad_sum = grads[0].defined() ? grads[0].contiguous() : at::Tensor();
    at::Tensor grad_input = grad_sum, grad_weight, grad_bias;
    if (grads[1].defined()) {
      std::tie(grad_input, grad_weight, grad_bias) =
          norm_gradients(context, grads[1].contiguous(), grad_sum,
                         context->needs_input_grad(0) || context->needs_input_grad(1), /*weight_index=*/2);
    }
    // x's and r's gradient is the sum's; autograd casts r's to r's dtype.
    return {grad_input, grad_input, grad_weight, grad_bias, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor layernorm(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, double eps,
                     std::optional<at::ScalarType> output_dtype) {
  return LayerNormFunction::apply(input.contiguous(), weight.contiguous(), bias.contiguous(), eps, output_dtype);
}

bool add_layernorm_takes(at::ScalarType input, at::ScalarType residual, at::ScalarType output) {
  return residual == output || (residual == at::kBFloat16 && input == at::kFloat);
}

std::pair<at::Tensor, at::Tensor> add_layernorm(const at::Tensor& input, const at::Tensor& residual,
                                                const at::Tensor& weight, const at::Tensor& bias, double eps,
                                                std::optional<at::ScalarType> output_dtype) {
  const at::ScalarType output_type = output_dtype.value_or(input.scalar_type());
  ALBION_CHECK_AS(UsageError,
                  residual.sizes() == input.sizes() && residual.device() == input.device() &&
                      add_layernorm_takes(input.scalar_type(), residual.scalar_type(), output_type),
                  "add_layernorm: residual (", residual.scalar_type(), " ", residual.sizes(), " on ", residual.device(),
                  ") must have input's shape ", input.sizes(), " and device, in the output's dtype ", output_type,
                  " (or bf16 for fp32 input)");
  if (!runs_kernels(input)) {  // the reference: the add, then the norm
    at::Tensor sum = input + residual;
    return {sum, layernorm(sum, weight, bias, eps, output_dtype)};
  }
  const torch::autograd::variable_list outputs = AddLayerNormFunction::apply(
      input.contiguous(), residual.contiguous(), weight.contiguous(), bias.contiguous(), eps, output_dtype);
  return {outputs[0], outputs[1]};
}

}  // namespace albion::kernels
