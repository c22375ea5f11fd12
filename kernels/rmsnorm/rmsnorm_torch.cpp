// File: kernels/rmsnorm/rmsnorm_torch.cpp
// Torch layer of RMSNorm: checks tensors at the boundary, dispatches to the CUDA launchers or the
// CPU references, and defines the autograd function: the norm, optionally with the residual add
// before it (Note [The residual add in the norm], kernels/layernorm/layernorm_torch.cpp: Llama's
// post_attention_layernorm after the attention, the next input_layernorm or the final norm after
// the MLP) and its output written once per reading product.
//
// Note [One operand per product]
// Under bf16 autocast Llama's residual stream is fp32 and each norm's output feeds several bf16
// matrix products: input_layernorm's the query, key and value projections, post_attention_layer-
// norm's the gate and up projections (and, with LoRA adapters, each adapter's first product too).
// Written in fp32, it cost 4 bytes an element, then each product's cast read 4 and wrote 2; in the
// backward pass each cast's gradient widened its product's bf16 input gradient to fp32 (2 read, 4
// written), autograd summed those in fp32 (12 an add) and the norm read the sum (4). One bf16
// output read by all of them (Note [A norm writes its product's operand],
// kernels/layernorm/layernorm_torch.cpp) would make autograd sum their bf16 gradients in bf16,
// rounding where the casts' gradients did not. So the norm writes one bf16 operand per product
// instead, each the fp32 output rounded once as the cast rounds it, each its own autograd output:
// their gradients reach the backward pass apart, and its kernel reads them all and sums them in
// fp32 as it reads dy (RmsNormBackwardParams::further_grad_outputs). For three products that is 6
// bytes written where 22 moved, and 6 read where 46 moved: 56 bytes an element, 36 for two (116 and
// 76 with an adapter on each), and the casts' and adds' kernels gone. The operands are the same
// values and gradients; only the fp32 sum's order may differ from autograd's (the operands' order
// here).
#include <torch/csrc/autograd/custom_function.h>

#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/common/cpu_dispatch.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/norm_grad/norm_parameter_grad.h"
#include "kernels/rmsnorm/rmsnorm.cuh"
#include "kernels/rmsnorm/rmsnorm.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// Rows of the [..., cols] input, after the checks every entry point shares.
std::int64_t check_operands(const at::Tensor& input, const at::Tensor& weight) {
  check_same_device_and_dtype(input, weight, "rmsnorm input", "rmsnorm weight");
  check_contiguous(input, "rmsnorm input");
  check_contiguous(weight, "rmsnorm weight");
  ALBION_CHECK_AS(UsageError, input.dim() >= 1 && weight.dim() == 1 && weight.size(0) == input.size(-1),
                  "rmsnorm: weight of shape ", weight.sizes(), " does not match input of shape ", input.sizes(),
                  " (expected [", input.dim() ? input.size(-1) : 0, "])");
  ALBION_CHECK_AS(UsageError, input.is_cuda() || input.is_cpu(), "rmsnorm: unsupported device ", input.device());
  ALBION_CHECK_AS(UsageError, at::isFloatingType(input.scalar_type()), "rmsnorm: input of dtype ",
                  input.scalar_type(), " is not floating point");
  if (runs_kernels(input)) kernel_dtype(input, "rmsnorm input");
  const std::int64_t cols = input.size(-1);
  return cols == 0 ? 0 : input.numel() / cols;
}

// How the output is written: `copies` times (one per reading product, Note [One operand per
// product]; more than one only in bf16 for fp32 input), in `type` (input's, or bf16 for fp32 input).
struct OutputLayout {
  at::ScalarType type;
  std::int64_t copies = 1;
};

void check_layout(const at::Tensor& input, OutputLayout layout) {
  const bool bf16_beside_fp32 = layout.type == at::kBFloat16 && input.scalar_type() == at::kFloat;
  ALBION_CHECK_AS(UsageError, layout.type == input.scalar_type() || bf16_beside_fp32, "rmsnorm: output dtype ",
                  layout.type, " for input of dtype ", input.scalar_type(), " (the input's, or bf16 for fp32 input)");
  ALBION_CHECK_AS(UsageError,
                  layout.copies == 1 || (bf16_beside_fp32 && layout.copies > 1 && layout.copies <= kMaxNormOutputs),
                  "rmsnorm: ", layout.copies, " operands: 1, or up to ", kMaxNormOutputs, " in bf16 for fp32 input");
}

struct ForwardResult {
  std::vector<at::Tensor> outputs;  // the layout's copies
  at::Tensor inv_rms;
  at::Tensor sum;  // input + residual, where there is a residual
};

// The forward pass with its statistics, of input, or of input + residual where `residual` is
// defined (the kernels only).
ForwardResult forward_with_stats(const at::Tensor& input, const at::Tensor& residual, const at::Tensor& weight,
                                 double eps, OutputLayout layout) {
  ALBION_CHECK_AS(UsageError, eps > 0, "rmsnorm: eps must be positive, got ", eps);
  const std::int64_t rows = check_operands(input, weight);
  check_layout(input, layout);
  ALBION_CHECK(!residual.defined() || runs_kernels(input), "rmsnorm: the residual add runs in the kernels only");
  const std::int64_t cols = input.size(-1);
  std::vector<at::Tensor> outputs;
  for (std::int64_t c = 0; c < layout.copies; ++c) {
    outputs.push_back(at::empty_like(input, input.options().dtype(layout.type)));
  }
  at::Tensor inv_rms = at::empty({rows}, input.options().dtype(statistics_type(input)));
  const at::Tensor sum = residual.defined() ? at::empty_like(input) : at::Tensor();
  if (rows == 0) return {outputs, inv_rms, sum};
  if (runs_kernels(input)) {
    const KernelLaunch launch(input.device());
    RmsNormForwardParams p;
    p.input = input.data_ptr();
    p.weight = weight.data_ptr();
    p.output = outputs[0].data_ptr();
    for (std::int64_t c = 1; c < layout.copies; ++c) p.further_outputs[c - 1] = outputs[c].data_ptr();
    p.bf16_output = layout.type != input.scalar_type();
    p.inv_rms = inv_rms.data_ptr<float>();
    p.rows = rows;
    p.cols = cols;
    p.eps = static_cast<float>(eps);
    p.dtype = kernel_dtype(input, "rmsnorm input");
    if (residual.defined()) {
      p.residual = residual.data_ptr();
      p.sum = sum.data_ptr();
      p.bf16_residual = residual.scalar_type() != input.scalar_type();
    }
    launch_rmsnorm_forward(p, launch.stream());
    return {outputs, inv_rms, sum};
  }
  with_reference_type(input, [&](auto tag) {
    using T = decltype(tag);
    const at::ScalarType type = c10::CppTypeToScalarType<T>::value;
    at::Tensor x = input.to(type).contiguous();
    at::Tensor w = weight.to(type).contiguous();
    at::Tensor y = at::empty_like(x);
    rmsnorm_forward_reference<T>(x.data_ptr<T>(), w.data_ptr<T>(), y.data_ptr<T>(), inv_rms.data_ptr<T>(), rows,
                                 cols, static_cast<T>(eps));
    for (at::Tensor& output : outputs) output.copy_(y);  // rounds to the output's dtype once
  });
  return {outputs, inv_rms, sum};
}

// dy as one tensor of input's dtype: the gradients widened and summed in their order, as the
// kernel sums them (for the references, and the weight's gradient summed apart).
at::Tensor summed_gradient(at::TensorList grad_outputs, at::ScalarType type) {
  at::Tensor sum = grad_outputs[0].to(type);
  for (std::size_t i = 1; i < grad_outputs.size(); ++i) sum = sum + grad_outputs[i];
  return sum;
}

// The weight's gradient by the separate sum (norm_parameter_grad), which reads one dy of input's
// dtype: for rows too long to sum it in dx's pass, and for a norm whose input needs no gradient.
at::Tensor weight_gradient_apart(at::TensorList grad_outputs, const at::Tensor& input, const at::Tensor& inv_rms) {
  return norm_parameter_grads(summed_gradient(grad_outputs, input.scalar_type()), input, /*mean=*/at::Tensor(),
                              inv_rms, /*with_bias=*/false)
      .first;
}

}  // namespace

std::pair<at::Tensor, at::Tensor> rmsnorm_forward_with_stats(const at::Tensor& input, const at::Tensor& weight,
                                                            double eps) {
  ForwardResult result = forward_with_stats(input, at::Tensor(), weight, eps, {input.scalar_type()});
  return {result.outputs[0], result.inv_rms};
}

std::pair<at::Tensor, at::Tensor> rmsnorm_backward(at::TensorList grad_outputs, const at::Tensor& input,
                                                   const at::Tensor& weight, const at::Tensor& inv_rms,
                                                   bool weight_gradient, const at::Tensor& grad_sum) {
  const std::int64_t rows = check_operands(input, weight);
  ALBION_CHECK_AS(UsageError, !grad_outputs.empty(), "rmsnorm backward: no output gradient");
  check_layout(input, {grad_outputs[0].scalar_type(), static_cast<std::int64_t>(grad_outputs.size())});
  for (const at::Tensor& grad_output : grad_outputs) {
    check_contiguous(grad_output, "rmsnorm grad_output");
    ALBION_CHECK_AS(UsageError,
                    grad_output.sizes() == input.sizes() && grad_output.device() == input.device() &&
                        grad_output.scalar_type() == grad_outputs[0].scalar_type(),
                    "rmsnorm backward: grad_output (", grad_output.scalar_type(), " ", grad_output.sizes(), " on ",
                    grad_output.device(), ") must match input ", input.sizes(), " on ", input.device(),
                    ", all in one dtype");
  }
  ALBION_CHECK_AS(UsageError,
                  inv_rms.numel() == rows && inv_rms.scalar_type() == statistics_type(input) &&
                      inv_rms.device() == input.device() && inv_rms.is_contiguous(),
                  "rmsnorm backward: statistics ", inv_rms.sizes(), " ", inv_rms.scalar_type(), " on ",
                  inv_rms.device(), " do not match input ", input.sizes(), " on ", input.device());
  if (grad_sum.defined()) check_contiguous_like(grad_sum, input, "rmsnorm backward: grad_sum");
  const std::int64_t cols = input.size(-1);
  at::Tensor grad_input = at::empty_like(input);
  const auto weight_apart = [&] {
    return weight_gradient ? weight_gradient_apart(grad_outputs, input, inv_rms) : at::Tensor();
  };
  if (rows == 0) return {grad_input, weight_apart()};
  if (runs_kernels(input)) {
    const KernelLaunch launch(input.device());
    RmsNormBackwardParams p;
    p.grad_output = grad_outputs[0].data_ptr();
    for (std::size_t i = 1; i < grad_outputs.size(); ++i) p.further_grad_outputs[i - 1] = grad_outputs[i].data_ptr();
    p.bf16_grad_output = grad_outputs[0].scalar_type() != input.scalar_type();
    p.input = input.data_ptr();
    p.weight = weight.data_ptr();
    p.inv_rms = inv_rms.data_ptr<float>();
    p.grad_input = grad_input.data_ptr();
    p.rows = rows;
    p.cols = cols;
    p.dtype = kernel_dtype(input, "rmsnorm input");
    p.grad_sum = grad_sum.defined() ? grad_sum.data_ptr() : nullptr;
    const std::int64_t segments =
        weight_gradient ? rmsnorm_backward_weight_segments(p, multiprocessor_count(input.device())) : 0;
    if (segments == 0) {
      launch_rmsnorm_backward(p, launch.stream());
      return {grad_input, weight_apart()};
    }
    // Summed in the same pass.
    at::Tensor grad_weight = at::empty({cols}, inv_rms.options());
    const at::Tensor partials = at::empty({segments, cols}, inv_rms.options());
    p.grad_weight = grad_weight.data_ptr<float>();
    p.weight_partials = partials.data_ptr<float>();
    p.weight_segments = segments;
    launch_rmsnorm_backward(p, launch.stream());
    return {grad_input, grad_weight};
  }
  with_reference_type(input, [&](auto tag) {
    using T = decltype(tag);
    const at::ScalarType type = c10::CppTypeToScalarType<T>::value;
    at::Tensor dy = summed_gradient(grad_outputs, input.scalar_type()).to(type).contiguous();
    at::Tensor x = input.to(type).contiguous();
    at::Tensor w = weight.to(type).contiguous();
    at::Tensor dx = at::empty_like(x);
    rmsnorm_backward_reference<T>(dy.data_ptr<T>(), x.data_ptr<T>(), w.data_ptr<T>(), inv_rms.data_ptr<T>(),
                                  dx.data_ptr<T>(), rows, cols);
    grad_input.copy_(dx);
    if (grad_sum.defined()) grad_input.add_(grad_sum);  // rounded once more, as the kernel rounds
  });
  return {grad_input, weight_apart()};
}

void rmsnorm_forward_out(at::Tensor& output, const at::Tensor& input, const at::Tensor& weight, double eps) {
  check_same_device_and_dtype(input, output, "rmsnorm input", "rmsnorm output");
  check_contiguous(output, "rmsnorm output");
  ALBION_CHECK_AS(UsageError, output.sizes() == input.sizes(), "rmsnorm: output of shape ", output.sizes(),
                  " does not match input of shape ", input.sizes());
  output.copy_(rmsnorm_forward_with_stats(input, weight, eps).first);
}

at::Tensor rmsnorm_forward(const at::Tensor& input, const at::Tensor& weight, double eps) {
  return rmsnorm_forward_with_stats(input, weight, eps).first;
}

namespace {

// The norm of input, or of input + residual where there is one (the sum then the first output),
// written as the layout's copies; one kernel each way.
class RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* context, const at::Tensor& input,
                                                const std::optional<at::Tensor>& residual, const at::Tensor& weight,
                                                double eps, at::ScalarType output_type, std::int64_t copies) {
    const bool with_sum = residual.has_value();
    ForwardResult result =
        forward_with_stats(input, with_sum ? *residual : at::Tensor(), weight, eps, {output_type, copies});
    context->save_for_backward({with_sum ? result.sum : input, weight, result.inv_rms});
    context->saved_data["with_sum"] = with_sum;
    context->set_materialize_grads(false);  // an output nothing read: no zeros to add
    torch::autograd::variable_list outputs;
    if (with_sum) outputs.push_back(result.sum);
    outputs.insert(outputs.end(), result.outputs.begin(), result.outputs.end());
    return outputs;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    const bool with_sum = context->saved_data["with_sum"].toBool();
    // An output nothing read has no gradient (undefined).
    const at::Tensor grad_sum = with_sum && grads[0].defined() ? grads[0].contiguous() : at::Tensor();
    std::vector<at::Tensor> grad_outputs;
    for (std::size_t i = with_sum ? 1 : 0; i < grads.size(); ++i) {
      if (grads[i].defined()) grad_outputs.push_back(grads[i].contiguous());
    }
    const torch::autograd::variable_list saved = context->get_saved_variables();
    const at::Tensor& normalised = saved[0];  // x, or x + r
    const at::Tensor& weight = saved[1];
    const at::Tensor& inv_rms = saved[2];
    // needs_input_grad counts tensor inputs only: {input, residual, weight}, or {input, weight}.
    const bool input_gradient = context->needs_input_grad(0) || (with_sum && context->needs_input_grad(1));
    const bool weight_gradient = context->needs_input_grad(with_sum ? 2 : 1);  // false: a frozen weight
    at::Tensor grad_input = grad_sum, grad_weight;
    if (!grad_outputs.empty() && input_gradient) {
      std::tie(grad_input, grad_weight) =
          rmsnorm_backward(grad_outputs, normalised, weight, inv_rms, weight_gradient, grad_sum);
    } else if (!grad_outputs.empty() && weight_gradient) {
      grad_weight = weight_gradient_apart(grad_outputs, normalised, inv_rms);
    }
    // x's and r's gradient is the sum's; autograd casts r's to r's dtype.
    return {grad_input, with_sum ? grad_input : at::Tensor(),
            weight_gradient && grad_weight.defined() ? grad_weight.to(weight.scalar_type()) : at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void check_residual(const at::Tensor& input, const at::Tensor& residual, const char* function) {
  ALBION_CHECK_AS(UsageError,
                  residual.sizes() == input.sizes() && residual.device() == input.device() &&
                      add_rmsnorm_takes(input.scalar_type(), residual.scalar_type()),
                  function, ": residual (", residual.scalar_type(), " ", residual.sizes(), " on ", residual.device(),
                  ") must have input's shape ", input.sizes(), ", device and dtype ", input.scalar_type(),
                  " (or bf16 for fp32 input)");
}

}  // namespace

at::Tensor rmsnorm(const at::Tensor& input, const at::Tensor& weight, double eps) {
  return RmsNormFunction::apply(input.contiguous(), std::nullopt, weight.contiguous(), eps, input.scalar_type(), 1)[0];
}

bool add_rmsnorm_takes(at::ScalarType input, at::ScalarType residual) {
  return residual == input || (residual == at::kBFloat16 && input == at::kFloat);
}

std::pair<at::Tensor, at::Tensor> add_rmsnorm(const at::Tensor& input, const at::Tensor& residual,
                                              const at::Tensor& weight, double eps) {
  check_residual(input, residual, "add_rmsnorm");
  if (!runs_kernels(input)) {  // the reference: the add, then the norm
    at::Tensor sum = input + residual;
    return {sum, rmsnorm(sum, weight, eps)};
  }
  const torch::autograd::variable_list outputs = RmsNormFunction::apply(
      input.contiguous(), std::optional(residual.contiguous()), weight.contiguous(), eps, input.scalar_type(), 1);
  return {outputs[0], outputs[1]};
}

bool rmsnorm_operands_take(std::int64_t operands) { return operands >= 1 && operands <= kMaxNormOutputs; }

std::vector<at::Tensor> rmsnorm_operands(const at::Tensor& input, const at::Tensor& weight, double eps,
                                         std::int64_t operands) {
  return RmsNormFunction::apply(input.contiguous(), std::nullopt, weight.contiguous(), eps, at::kBFloat16, operands);
}

std::pair<at::Tensor, std::vector<at::Tensor>> add_rmsnorm_operands(const at::Tensor& input,
                                                                    const at::Tensor& residual,
                                                                    const at::Tensor& weight, double eps,
                                                                    std::int64_t operands) {
  check_residual(input, residual, "add_rmsnorm_operands");
  if (!runs_kernels(input)) {  // the reference: the add, then the norm
    at::Tensor sum = input + residual;
    return {sum, rmsnorm_operands(sum, weight, eps, operands)};
  }
  torch::autograd::variable_list outputs = RmsNormFunction::apply(
      input.contiguous(), std::optional(residual.contiguous()), weight.contiguous(), eps, at::kBFloat16, operands);
  at::Tensor sum = outputs[0];
  outputs.erase(outputs.begin());
  return {sum, outputs};
}

}  // namespace albion::kernels
