// File: kernels/linear/accumulating_linear.cpp
#include "kernels/linear/accumulating_linear.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <optional>
#include <vector>

#include "kernels/common/product_into.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// `parameter`'s .grad += a b, or = a b when it has none yet.
void add_product_to_grad(const at::Tensor& parameter, const at::Tensor& a, const at::Tensor& b) {
  at::Tensor& grad = parameter.mutable_grad();
  if (grad.defined()) {
    product_into(grad, a, b, /*accumulate=*/true);
  } else {
    at::Tensor fresh = at::empty(parameter.sizes(), parameter.options().requires_grad(false));
    product_into(fresh, a, b, /*accumulate=*/false);
    grad = fresh;
  }
}

void add_to_grad(const at::Tensor& parameter, const at::Tensor& value) {
  at::Tensor& grad = parameter.mutable_grad();
  if (grad.defined()) {
    grad.add_(value);
  } else {
    grad = value.to(parameter.scalar_type()).contiguous();
  }
}

class AccumulatingLinear : public torch::autograd::Function<AccumulatingLinear> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            const std::optional<at::Tensor>& bias, bool in_by_out) {
    const at::DeviceType device = x.device().type();
    const at::Tensor x16 = x.reshape({-1, x.size(-1)}).to(at::kBFloat16);
    // The step's cast when the trainer keeps them (Note [Weights cast once per step]).
    const at::Tensor w16 = at::autocast::cached_cast(at::kBFloat16, weight, device);
    const at::Tensor w16_as_in_by_out = in_by_out ? w16 : w16.t();
    // Written into the output's own shape: a view of a tensor made in here could not be changed in
    // place by what follows (autograd forbids it for a custom function's outputs).
    std::vector<std::int64_t> out_sizes = x.sizes().vec();
    out_sizes.back() = w16_as_in_by_out.size(1);
    at::Tensor y = at::empty(out_sizes, x16.options());
    at::Tensor y_rows = y.view({-1, out_sizes.back()});
    if (bias) {
      at::addmm_out(y_rows, at::autocast::cached_cast(at::kBFloat16, *bias, device), x16, w16_as_in_by_out);
    } else {
      at::mm_out(y_rows, x16, w16_as_in_by_out);
    }
    ctx->save_for_backward({x16, w16});
    ctx->saved_data["weight"] = weight;
    if (bias) ctx->saved_data["bias"] = *bias;
    ctx->saved_data["in_by_out"] = in_by_out;
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    ctx->saved_data["x_dtype"] = static_cast<std::int64_t>(x.scalar_type());
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    ALBION_CHECK_AS(UsageError, !at::GradMode::is_enabled(),
                    "accumulating_linear: double backward (create_graph) is not supported");
    const torch::autograd::variable_list saved = ctx->get_saved_variables();
    const at::Tensor& x16 = saved[0];
    const at::Tensor& w16 = saved[1];
    const bool in_by_out = ctx->saved_data["in_by_out"].toBool();
    const at::Tensor dy = grads[0].reshape({-1, grads[0].size(-1)}).to(at::kBFloat16);
    at::Tensor dx;
    if (ctx->needs_input_grad(0)) {
      dx = at::mm(dy, in_by_out ? w16.t() : w16)
               .view(ctx->saved_data["x_sizes"].toIntVector())
               .to(static_cast<at::ScalarType>(ctx->saved_data["x_dtype"].toInt()));
    }
    const at::Tensor weight = ctx->saved_data["weight"].toTensor();
    in_by_out ? add_product_to_grad(weight, x16.t(), dy) : add_product_to_grad(weight, dy.t(), x16);
    const auto bias = ctx->saved_data.find("bias");
    if (bias != ctx->saved_data.end() && bias->second.toTensor().requires_grad()) {
      add_to_grad(bias->second.toTensor(), dy.sum(0));  // autograd's bf16 sum, as without this
    }
    return {dx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool accumulates_in_place(const at::Tensor& x, const at::Tensor& weight) {
  const at::DeviceType device = x.device().type();
  return at::GradMode::is_enabled() && weight.requires_grad() && weight.is_leaf() &&
         weight.scalar_type() == at::kFloat && at::autocast::is_autocast_enabled(device) &&
         at::autocast::get_autocast_dtype(device) == at::kBFloat16;
}

at::Tensor accumulating_linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                               WeightLayout layout) {
  ALBION_CHECK_AS(UsageError, weight.dim() == 2 && x.dim() >= 1 &&
                                  x.size(-1) == weight.size(layout == WeightLayout::kInByOut ? 0 : 1),
                  "accumulating_linear: input ", x.sizes(), " does not fit weight ", weight.sizes());
  return AccumulatingLinear::apply(x, weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt,
                                   layout == WeightLayout::kInByOut);
}

}  // namespace albion::kernels
