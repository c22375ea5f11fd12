// File: kernels/cross_entropy/linear_cross_entropy.cpp
#include "kernels/cross_entropy/linear_cross_entropy.h"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

at::ScalarType logits_type(const at::Tensor& hidden) {
  return hidden.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// The logits of rows [begin, begin + count), in fp32 (fp64).
at::Tensor chunk_logits(const at::Tensor& hidden, const at::Tensor& weight, std::int64_t begin, std::int64_t count) {
  return at::matmul(hidden.narrow(0, begin, count), weight.t()).to(logits_type(hidden));
}

class LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& hidden,
                            const at::Tensor& weight, const at::Tensor& targets, std::int64_t ignore_index,
                            std::int64_t chunk_rows) {
    at::NoGradGuard no_grad;
    const std::int64_t rows = hidden.size(0);
    at::Tensor lse = at::empty({rows}, hidden.options().dtype(logits_type(hidden)));
    at::Tensor total = at::zeros({}, lse.options());
    const at::Tensor keep = targets != ignore_index;
    const at::Tensor safe_targets = at::where(keep, targets, at::zeros_like(targets));
    for (std::int64_t begin = 0; begin < rows; begin += chunk_rows) {
      const std::int64_t count = std::min(chunk_rows, rows - begin);
      const at::Tensor logits = chunk_logits(hidden, weight, begin, count);
      const at::Tensor chunk_lse = at::logsumexp(logits, {1});
      lse.narrow(0, begin, count).copy_(chunk_lse);
      const at::Tensor target_logit = logits.gather(1, safe_targets.narrow(0, begin, count).unsqueeze(1)).squeeze(1);
      total += ((chunk_lse - target_logit) * keep.narrow(0, begin, count)).sum();
    }
    context->save_for_backward({hidden, weight, safe_targets, keep, lse});
    context->saved_data["chunk_rows"] = chunk_rows;
    return total;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    at::NoGradGuard no_grad;
    const torch::autograd::variable_list saved = context->get_saved_variables();
    const at::Tensor& hidden = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& targets = saved[2];
    const at::Tensor& keep = saved[3];
    const at::Tensor& lse = saved[4];
    const std::int64_t chunk_rows = context->saved_data["chunk_rows"].toInt();
    const at::Tensor scale = grads[0].to(lse.scalar_type());
    const std::int64_t rows = hidden.size(0);
    at::Tensor grad_hidden = at::empty_like(hidden);
    at::Tensor grad_weight = at::zeros(weight.sizes(), weight.options().dtype(lse.scalar_type()));
    for (std::int64_t begin = 0; begin < rows; begin += chunk_rows) {
      const std::int64_t count = std::min(chunk_rows, rows - begin);
      // d(sum loss)/d(logits) = (softmax - one_hot) per kept row, times the incoming gradient.
      at::Tensor g = (chunk_logits(hidden, weight, begin, count) - lse.narrow(0, begin, count).unsqueeze(1)).exp_();
      g.scatter_add_(1, targets.narrow(0, begin, count).unsqueeze(1),
                     at::full({count, 1}, -1.0, g.options()));
      g.mul_((keep.narrow(0, begin, count).to(g.scalar_type()) * scale).unsqueeze(1));
      const at::Tensor g_in = g.to(hidden.scalar_type());
      grad_hidden.narrow(0, begin, count).copy_(at::matmul(g_in, weight));
      grad_weight.add_(at::matmul(g_in.t(), hidden.narrow(0, begin, count)).to(grad_weight.scalar_type()));
    }
    return {grad_hidden, grad_weight.to(weight.scalar_type()), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    std::int64_t ignore_index, std::int64_t chunk_rows) {
  ALBION_CHECK_AS(UsageError, hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
                  "linear_cross_entropy: hidden ", hidden.sizes(), " and weight ", weight.sizes(),
                  " must be [N, H] and [V, H]");
  ALBION_CHECK_AS(UsageError, targets.dim() == 1 && targets.size(0) == hidden.size(0) &&
                                  targets.scalar_type() == at::kLong,
                  "linear_cross_entropy: targets ", targets.sizes(), " must be [", hidden.size(0), "] int64");
  ALBION_CHECK_AS(UsageError, chunk_rows > 0, "linear_cross_entropy: chunk_rows must be positive");
  return LinearCrossEntropy::apply(hidden, weight, targets, ignore_index, chunk_rows);
}

}  // namespace albion::kernels
