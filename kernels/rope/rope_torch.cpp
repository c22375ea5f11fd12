// File: kernels/rope/rope_torch.cpp
// Torch layer of the rotary embedding: boundary checks, dispatch, autograd.
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/rope/rope.cuh"
#include "kernels/rope/rope.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

void check_operands(const at::Tensor& output, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  ALBION_CHECK_AS(UsageError, x.dim() == 4, "rope: x must be [batch, seq, heads, head_dim], got ", x.sizes());
  check_contiguous(x, "rope x");
  check_contiguous(output, "rope output");
  check_contiguous(cos, "rope cos");
  check_contiguous(sin, "rope sin");
  check_same_device_and_dtype(x, output, "rope x", "rope output");
  check_same_or_disjoint(output, x, "rope");
  check_same_device_and_dtype(cos, sin, "rope cos", "rope sin");
  ALBION_CHECK_AS(UsageError, output.sizes() == x.sizes(), "rope: output ", output.sizes(), " vs x ", x.sizes());
  const std::int64_t head_dim = x.size(3);
  ALBION_CHECK_AS(UsageError, head_dim % 2 == 0, "rope: head_dim ", head_dim, " must be even");
  ALBION_CHECK_AS(UsageError, cos.dim() == 2 && cos.size(1) == head_dim && cos.size(0) >= x.size(1) &&
                                  sin.sizes() == cos.sizes(),
                  "rope: tables of shape ", cos.sizes(), " do not cover ", x.size(1), " positions of ", head_dim);
  ALBION_CHECK_AS(UsageError, cos.device() == x.device(), "rope: tables on ", cos.device(), ", x on ", x.device());
  const at::ScalarType table_type = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  ALBION_CHECK_AS(UsageError, cos.scalar_type() == table_type, "rope: tables must be ", table_type, " for ",
                  x.scalar_type(), " activations, got ", cos.scalar_type());
}

}  // namespace

void rope_rotate_out(at::Tensor& output, const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     bool inverse) {
  check_operands(output, x, cos, sin);
  if (runs_kernels(x)) {
    const DType dtype = kernel_dtype(x, "rope x");  // before data_ptr<float>(): fp64 is a usage error
    const KernelLaunch launch(x.device());
    RopeParams p;
    p.input = x.data_ptr();
    p.output = output.data_ptr();
    p.cos = cos.data_ptr<float>();
    p.sin = sin.data_ptr<float>();
    p.batch = x.size(0);
    p.seq = x.size(1);
    p.heads = x.size(2);
    p.head_dim = x.size(3);
    p.direction = inverse ? -1.0f : 1.0f;
    p.dtype = dtype;
    launch_rope(p, launch.stream());
    mark_written_in_place(output);
    return;
  }
  ALBION_CHECK_AS(UsageError, x.is_cpu(), "rope: unsupported device ", x.device());
  if (x.scalar_type() == at::kDouble) {
    rope_reference<double>(x.data_ptr<double>(), output.data_ptr<double>(), cos.data_ptr<double>(),
                           sin.data_ptr<double>(), x.size(0), x.size(1), x.size(2), x.size(3), inverse ? -1.0 : 1.0);
    mark_written_in_place(output);
    return;
  }
  at::Tensor x32 = x.to(at::kFloat).contiguous();
  at::Tensor out32 = at::empty_like(x32);
  rope_reference<float>(x32.data_ptr<float>(), out32.data_ptr<float>(), cos.data_ptr<float>(), sin.data_ptr<float>(),
                        x.size(0), x.size(1), x.size(2), x.size(3), inverse ? -1.0f : 1.0f);
  output.copy_(out32);
}

namespace {

class RopeFunction : public torch::autograd::Function<RopeFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin, bool in_place) {
    context->save_for_backward({cos, sin});
    if (in_place) {
      at::Tensor rotated = x;
      rope_rotate_out(rotated, x, cos, sin, /*inverse=*/false);
      context->mark_dirty({x});
      return x;
    }
    at::Tensor out = at::empty_like(x);
    rope_rotate_out(out, x, cos, sin, /*inverse=*/false);
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = context->get_saved_variables();
    at::Tensor grad = grads[0].contiguous();
    at::Tensor grad_x = at::empty_like(grad);
    rope_rotate_out(grad_x, grad, saved[0], saved[1], /*inverse=*/true);
    return {grad_x, at::Tensor(), at::Tensor(), at::Tensor()};  // the tables are constants
  }
};

}  // namespace

at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  return RopeFunction::apply(x.contiguous(), cos.contiguous(), sin.contiguous(), /*in_place=*/false);
}

at::Tensor rope_(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  check_contiguous(x, "rope_ x");
  return RopeFunction::apply(x, cos.contiguous(), sin.contiguous(), /*in_place=*/true);
}

}  // namespace albion::kernels
