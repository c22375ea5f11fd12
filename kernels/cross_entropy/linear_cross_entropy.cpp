// File: kernels/cross_entropy/linear_cross_entropy.cpp
#include "kernels/cross_entropy/linear_cross_entropy.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>

#include "kernels/common/cpu_dispatch.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/product_into.h"
#include "kernels/cross_entropy/softmax_cross_entropy.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// The kernel's ChunkCrossEntropy: the gradient in place unless the kernel needed another dtype.
std::pair<at::Tensor, at::Tensor> kernel_chunk_loss(at::Tensor logits, const at::Tensor& targets,
                                                    std::int64_t ignore_index, bool write_gradient) {
  const at::ScalarType product_type = logits.scalar_type();
  const bool supported = product_type == at::kFloat || product_type == at::kBFloat16 ||
                         (product_type == at::kDouble && !runs_kernels(logits));  // the reference
  if (!supported) logits = logits.to(at::kFloat);
  at::Tensor losses = softmax_cross_entropy_(logits, targets, ignore_index, write_gradient);
  return {losses, write_gradient ? logits.to(product_type) : at::Tensor()};
}

// The operand as the matrix products will see it: cast once to autocast's dtype when autocast is
// on (at::matmul would recast the weight's transposed view every chunk: the cast cache keeps only
// casts of leaves, and a cast cached under no_grad would lack its grad_fn anyway).
at::Tensor product_operand(const at::Tensor& t) {
  const at::DeviceType device = t.device().type();
  if (!at::autocast::is_autocast_enabled(device) || !t.is_floating_point() || t.scalar_type() == at::kDouble) return t;
  return t.to(at::autocast::get_autocast_dtype(device));
}

// Note [Padded vocabulary]
// With the kernel's chunk loss, a vocabulary that is not a multiple of kVocabMultiple (GPT-2's
// 50,257) is padded with zero weight rows for the products: cuBLAS needs 16-byte-aligned leading
// dimensions for its fast kernels, and an odd one sent GPT-2's three LM-head products to slow
// align-1 kernels (127 of 247 ms in a step on an H200). The padded logits are set to -inf, which
// the softmax gives probability 0 and a gradient of 0, so the loss and the gradients are those of
// the real vocabulary; the padded rows of the weight's gradient are dropped. The parameter keeps
// its shape: checkpoints, imports and sampling never see the padding. A custom chunk loss gets the
// padded logits too: the vocabulary-parallel one pads each rank's rows (GPT-2's 50,258 on 2 ranks
// is 25,129 rows a rank, odd again) and counts only its V rows as its own targets' columns.
constexpr std::int64_t kVocabMultiple = 64;

class LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& hidden,
                            const at::Tensor& weight, const at::Tensor& targets, std::int64_t ignore_index,
                            std::int64_t chunk_rows, std::int64_t padded_vocab, bool want_grad_hidden,
                            bool want_grad_weight, const ChunkCrossEntropy* chunk_loss) {
    at::NoGradGuard no_grad;
    const bool write_gradient = want_grad_hidden || want_grad_weight;
    const at::ScalarType statistics = statistics_type(hidden);
    const std::int64_t rows = hidden.size(0);
    const std::int64_t vocab = weight.size(0);
    at::Tensor losses = at::empty({rows}, hidden.options().dtype(statistics));
    at::Tensor grad_hidden = want_grad_hidden ? at::empty_like(hidden) : at::Tensor();
    at::Tensor grad_weight = want_grad_weight ? at::zeros({padded_vocab, weight.size(1)},
                                                          weight.options().dtype(statistics))
                                              : at::Tensor();
    const at::Tensor product_hidden = product_operand(hidden);
    at::Tensor product_weight = product_operand(weight);
    if (padded_vocab > vocab) product_weight = at::constant_pad_nd(product_weight, {0, 0, 0, padded_vocab - vocab});
    for (std::int64_t begin = 0; begin < rows; begin += chunk_rows) {
      const std::int64_t count = std::min(chunk_rows, rows - begin);
      const at::Tensor chunk_hidden = product_hidden.narrow(0, begin, count);
      at::Tensor logits = at::matmul(chunk_hidden, product_weight.t());
      if (padded_vocab > vocab) logits.narrow(1, vocab, padded_vocab - vocab).fill_(-INFINITY);
      auto [chunk_losses, gradient] =
          (*chunk_loss)(logits, targets.narrow(0, begin, count), ignore_index, write_gradient);
      losses.narrow(0, begin, count).copy_(chunk_losses);
      if (want_grad_hidden) product_into(grad_hidden.narrow(0, begin, count), gradient, product_weight, false);
      if (want_grad_weight) product_into(grad_weight, gradient.t(), chunk_hidden, true);
    }
    // Kept as saved data, not saved variables, so backward can hand them on without a copy.
    context->saved_data["grad_hidden"] = grad_hidden;
    context->saved_data["grad_weight"] = want_grad_weight ? grad_weight.narrow(0, 0, vocab) : grad_weight;
    context->saved_data["weight_type"] = static_cast<std::int64_t>(weight.scalar_type());
    return losses.sum();
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    // The gradients were computed in the forward, outside autograd: a graph through them would
    // be silently wrong.
    ALBION_CHECK_AS(UsageError, !at::GradMode::is_enabled(),
                    "linear_cross_entropy: double backward (create_graph) is not supported");
    at::NoGradGuard no_grad;
    const auto take = [&](const char* name) {
      const auto found = context->saved_data.find(name);
      ALBION_CHECK_AS(UsageError, found != context->saved_data.end(),
                      "linear_cross_entropy: backward ran twice (retain_graph); the forward's gradients were "
                      "handed on by the first");
      at::Tensor t = found->second.toTensor();
      context->saved_data.erase(found);
      return t;
    };
    at::Tensor grad_hidden = take("grad_hidden");
    at::Tensor grad_weight = take("grad_weight");
    const auto weight_type = static_cast<at::ScalarType>(context->saved_data["weight_type"].toInt());
    if (grad_hidden.defined()) grad_hidden.mul_(grads[0]);
    if (grad_weight.defined()) grad_weight = grad_weight.mul_(grads[0]).to(weight_type);
    return {grad_hidden, grad_weight, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor()};
  }
};

at::Tensor checked_linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight,
                                            const at::Tensor& targets, std::int64_t ignore_index,
                                            std::int64_t chunk_rows, bool pad_vocabulary,
                                            const ChunkCrossEntropy& chunk_loss) {
  ALBION_CHECK_AS(UsageError, hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
                  "linear_cross_entropy: hidden ", hidden.sizes(), " and weight ", weight.sizes(),
                  " must be [N, H] and [V, H]");
  ALBION_CHECK_AS(UsageError, targets.dim() == 1 && targets.size(0) == hidden.size(0) &&
                                  targets.scalar_type() == at::kLong,
                  "linear_cross_entropy: targets ", targets.sizes(), " must be [", hidden.size(0), "] int64");
  ALBION_CHECK_AS(UsageError, weight.device() == hidden.device() && targets.device() == hidden.device(),
                  "linear_cross_entropy: hidden on ", hidden.device(), ", weight on ", weight.device(),
                  ", targets on ", targets.device(), " (one device expected)");
  ALBION_CHECK_AS(UsageError, chunk_rows >= 0, "linear_cross_entropy: chunk_rows must not be negative");
  const std::int64_t vocab = weight.size(0);
  const std::int64_t padded_vocab = pad_vocabulary ? (vocab + kVocabMultiple - 1) / kVocabMultiple * kVocabMultiple
                                                   : vocab;
  if (chunk_rows == 0) {
    constexpr std::int64_t kChunkLogitsBytes = std::int64_t{1} << 30;
    chunk_rows = std::max<std::int64_t>(128, kChunkLogitsBytes / (4 * std::max<std::int64_t>(padded_vocab, 1)));
  }
  const bool grad = at::GradMode::is_enabled();
  return LinearCrossEntropy::apply(hidden, weight, targets, ignore_index, chunk_rows, padded_vocab,
                                   grad && hidden.requires_grad(), grad && weight.requires_grad(), &chunk_loss);
}

}  // namespace

at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    std::int64_t ignore_index, std::int64_t chunk_rows) {
  static const ChunkCrossEntropy kernel = kernel_chunk_loss;
  // Padded only where the products run on cuBLAS (Note [Padded vocabulary]); the CPU gains nothing.
  return checked_linear_cross_entropy_sum(hidden, weight, targets, ignore_index, chunk_rows, runs_kernels(weight),
                                          kernel);
}

at::Tensor linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& targets,
                                    std::int64_t ignore_index, std::int64_t chunk_rows,
                                    const ChunkCrossEntropy& chunk_loss, std::optional<bool> pad_vocabulary) {
  return checked_linear_cross_entropy_sum(hidden, weight, targets, ignore_index, chunk_rows,
                                          pad_vocabulary.value_or(runs_kernels(weight)), chunk_loss);
}

}  // namespace albion::kernels
