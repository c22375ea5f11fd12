// File: runtime/models/tensor_parallel.cpp
#include "runtime/models/tensor_parallel.h"

#include <ATen/autocast_mode.h>
#include <c10/util/accumulate.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string_view>
#include <utility>
#include <vector>

#include "kernels/common/kernel_device.h"
#include "kernels/cross_entropy/linear_cross_entropy.h"
#include "kernels/cross_entropy/softmax_cross_entropy.h"
#include "runtime/base/check.h"
#include "runtime/models/layers.h"

namespace albion::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The sum over the group, on every rank, as a new tensor.
at::Tensor summed_over(const at::Tensor& local, collectives::Communicator& group) {
  at::Tensor sum = local.contiguous().clone();
  group.all_reduce(sum, collectives::ReduceOp::kSum)->wait();
  return sum;
}

// The layers cut by their outputs, and by their inputs (GPT-2's c_attn and c_fc, its c_proj layers,
// are Conv1D: their weights' dimensions are the other way round).
constexpr std::array<std::string_view, 7> kOutputCut = {"q_proj", "k_proj",  "v_proj", "gate_proj",
                                                         "up_proj", "c_attn", "c_fc"};
constexpr std::array<std::string_view, 3> kInputCut = {"o_proj", "down_proj", "c_proj"};

// True when `name` is "<...>.<layer>.<parameter>" for one of `layers`.
template <std::size_t N>
bool names(const std::string& name, const std::array<std::string_view, N>& layers, std::string_view parameter) {
  for (std::string_view layer : layers) {
    if (name.ends_with(str_cat(".", layer, ".", parameter))) return true;
  }
  return false;
}

// The group, kept in the autograd context until the backward pass.
struct HeldGroup : torch::CustomClassHolder {
  explicit HeldGroup(std::shared_ptr<collectives::Communicator> g) : group(std::move(g)) {}
  std::shared_ptr<collectives::Communicator> group;
};

// An autograd function keeps its group for the backward pass.
void hold_group(AutogradContext* ctx, std::shared_ptr<collectives::Communicator> group) {
  ctx->saved_data["group"] = at::IValue::make_capsule(c10::make_intrusive<HeldGroup>(std::move(group)));
}

collectives::Communicator& held_group(AutogradContext* ctx) {
  return *c10::static_intrusive_pointer_cast<HeldGroup>(ctx->saved_data["group"].toCapsule())->group;
}

class Enter : public torch::autograd::Function<Enter> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x,
                            std::shared_ptr<collectives::Communicator> group) {
    hold_group(ctx, std::move(group));
    return x;  // autograd makes the output a view of x: no copy
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {summed_over(grad_outputs[0], held_group(ctx)), at::Tensor()};
  }
};

class Leave : public torch::autograd::Function<Leave> {
 public:
  static at::Tensor forward(AutogradContext*, const at::Tensor& partial,
                            const std::shared_ptr<collectives::Communicator>& group) {
    return summed_over(partial, *group);
  }
  static variable_list backward(AutogradContext*, variable_list grad_outputs) {
    return {grad_outputs[0], at::Tensor()};
  }
};

// t's shape with its first dimension N made N * numerator / denominator.
std::vector<std::int64_t> rows_times(const at::Tensor& t, std::int64_t numerator, std::int64_t denominator) {
  std::vector<std::int64_t> shape = t.sizes().vec();
  shape.front() = shape.front() * numerator / denominator;
  return shape;
}

at::Tensor all_gathered_rows(const at::Tensor& part, collectives::Communicator& group) {
  const at::Tensor input = part.contiguous();
  at::Tensor whole = at::empty(rows_times(input, group.size(), 1), input.options());
  group.all_gather(whole, input)->wait();
  return whole;
}

at::Tensor reduce_scattered_rows(const at::Tensor& whole, collectives::Communicator& group) {
  ALBION_CHECK(whole.size(0) % group.size() == 0, whole.size(0), " tokens do not divide over the ", group.size(),
               " ranks of '", group.name(), "'");
  const at::Tensor input = whole.contiguous();
  at::Tensor part = at::empty(rows_times(input, 1, group.size()), input.options());
  group.reduce_scatter(part, input, collectives::ReduceOp::kSum)->wait();
  return part;
}

class GatherTokens : public torch::autograd::Function<GatherTokens> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& part,
                            std::shared_ptr<collectives::Communicator> group) {
    at::Tensor whole = all_gathered_rows(part, *group);
    hold_group(ctx, std::move(group));
    return whole;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {reduce_scattered_rows(grad_outputs[0], held_group(ctx)), at::Tensor()};
  }
};

class ScatterTokens : public torch::autograd::Function<ScatterTokens> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& whole,
                            std::shared_ptr<collectives::Communicator> group) {
    at::Tensor part = reduce_scattered_rows(whole, *group);
    hold_group(ctx, std::move(group));
    return part;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    return {all_gathered_rows(grad_outputs[0], held_group(ctx)), at::Tensor()};
  }
};

class GatheredProducts : public torch::autograd::Function<GatheredProducts> {
 public:
  // `bias_of[i]`: weight i's bias in `biases`, or -1.
  static variable_list forward(AutogradContext* ctx, const at::Tensor& part, at::TensorList weights,
                               at::TensorList biases, std::vector<std::int64_t> bias_of,
                               std::shared_ptr<collectives::Communicator> group) {
    // Cast to the products' dtype before gathering (the values the products see either way): under
    // autocast the gathers move, and the backward pass keeps, half the bytes.
    const at::Tensor input = part.to(product_dtype(part));
    const at::Tensor whole = all_gathered_rows(input, *group);
    variable_list products;
    for (std::size_t i = 0; i < weights.size(); ++i) {
      const at::Tensor weight = weight_as_read(weights[i], whole);  // Note [A frozen base held in bf16]
      products.push_back(bias_of[i] < 0 ? at::linear(whole, weight) : at::linear(whole, weight, biases[bias_of[i]]));
    }
    variable_list saved = {input};
    saved.insert(saved.end(), weights.begin(), weights.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["bias_of"] = bias_of;
    ctx->saved_data["part_dtype"] = static_cast<std::int64_t>(part.scalar_type());
    hold_group(ctx, std::move(group));
    return products;
  }

  // Megatron-LM's overlap: the input is gathered again while its gradient, which needs only the
  // weights, is computed, and that gradient is reduce-scattered while the weights' are.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& input = saved[0];
    const std::vector<std::int64_t> bias_of = ctx->saved_data["bias_of"].toIntVector();
    const std::size_t weights = bias_of.size();
    const std::size_t first_bias = 1 + weights;
    // The inputs in apply's order: part, the weights, the biases, bias_of, group.
    const auto biases = static_cast<std::size_t>(std::ranges::count_if(bias_of, [](std::int64_t b) { return b >= 0; }));
    variable_list grads(first_bias + biases + 2);
    collectives::Communicator& group = held_group(ctx);
    const at::Tensor whole = at::empty(rows_times(input, group.size(), 1), input.options());
    const std::shared_ptr<collectives::Work> gathering = group.all_gather(whole, input);

    // The products ran in the dtype of the gradients (autocast's, which the backward pass does not see).
    at::Tensor whole_grad;
    for (std::size_t i = 0; i < weights && ctx->needs_input_grad(0); ++i) {
      if (!grad_outputs[i].defined()) continue;
      const at::Tensor input_grad = grad_outputs[i].mm(saved[1 + i].to(grad_outputs[i].scalar_type()));
      whole_grad = whole_grad.defined() ? whole_grad.add_(input_grad) : input_grad;
    }
    at::Tensor part_grad;
    std::shared_ptr<collectives::Work> scattering;
    if (whole_grad.defined()) {
      whole_grad = whole_grad.to(static_cast<at::ScalarType>(ctx->saved_data["part_dtype"].toInt()));
      part_grad = at::empty(rows_times(whole_grad, 1, group.size()), whole_grad.options());
      scattering = group.reduce_scatter(part_grad, whole_grad, collectives::ReduceOp::kSum);
    }

    gathering->wait();
    for (std::size_t i = 0; i < weights; ++i) {
      const at::Tensor& grad = grad_outputs[i];
      if (!grad.defined()) continue;
      const at::Tensor& weight = saved[1 + i];
      if (ctx->needs_input_grad(1 + i)) {
        grads[1 + i] = grad.t().mm(whole.to(grad.scalar_type())).to(weight.scalar_type());
      }
      if (bias_of[i] >= 0 && ctx->needs_input_grad(first_bias + bias_of[i])) {
        grads[first_bias + bias_of[i]] = grad.sum(0).to(weight.scalar_type());
      }
    }
    if (scattering) {
      scattering->wait();
      grads[0] = part_grad;
    }
    return grads;
  }
};

// Note [A softmax over every rank's columns]
// With the vocabulary cut by columns, each rank holds the logits of its own ids. A row's loss needs
// the logsumexp over every rank's columns and its target's logit, wherever that is; its gradient,
// softmax - one_hot(target), needs that logsumexp on every rank. Two all-reduces a chunk carry
// them: each row's maximum (so the sums of exponentials stay in range), then each rank's sum of
// exponentials relative to it together with the target's logit, which only its rank adds. Columns
// from `in_use` on are masked ids, and those from `rows` on the products' padding (Note [Padded
// vocabulary]): -inf, so a rank holding only padding adds nothing. Torch's ops (the CPU) work on an
// fp32 copy of the logits: the copy, the max, the subtraction, the exponential, the sum, the
// division, the masking and the copy back read or write [chunk, V / n] fp32 twelve times. The
// kernels (a GPU) read the logits once for each rank's logsumexp, the largest of which is the
// maximum all-reduced, and once more to write the gradient in place in the logits' dtype
// (kernels::softmax_logsumexp and softmax_gradient_): three passes over bf16.
struct ChunkColumns {
  std::int64_t first_id;  // this rank's ids are rows from first_id on
  std::int64_t rows;
  std::int64_t in_use;  // ids of this rank's columns from in_use on are masked
  bool use_kernels;     // softmax_logsumexp and softmax_gradient_, or torch's ops
};

std::pair<at::Tensor, at::Tensor> vocab_parallel_chunk_loss(at::Tensor logits, const at::Tensor& targets,
                                                            std::int64_t ignore_index, bool write_gradient,
                                                            const ChunkColumns& columns,
                                                            collectives::Communicator& group) {
  const at::Tensor kept = (targets != ignore_index).unsqueeze(-1);
  const at::Tensor local = (targets - columns.first_id).unsqueeze(-1);
  // Bounded by the rank's rows, not the padded width: past them are the next rank's ids.
  const at::Tensor mine = kept & (local >= 0) & (local < columns.rows);
  const at::Tensor column = at::where(mine, local, 0);
  const std::int64_t width = logits.size(-1);
  const at::ScalarType product_type = logits.scalar_type();
  // The kernels work on the logits themselves (fp64 in fp32 on a GPU), torch's ops on an fp32 copy.
  at::Tensor x;
  if (columns.use_kernels) {
    x = kernels::runs_kernels(logits) && product_type != at::kBFloat16 ? logits.to(at::kFloat) : logits;
  } else {
    const at::ScalarType statistics = at::promote_types(product_type, at::kFloat);
    x = logits.to(statistics, /*non_blocking=*/false, /*copy=*/product_type != statistics);
  }
  if (columns.in_use < width) x.narrow(-1, columns.in_use, width - columns.in_use).fill_(-INFINITY);
  // This rank's part of each row: its logsumexp (ignored rows: 0), or its maximum; the maximum of
  // those over the ranks keeps every rank's exponentials in range.
  const at::Tensor here = columns.use_kernels ? kernels::softmax_logsumexp(x, targets, ignore_index).unsqueeze(-1)
                                              : std::get<0>(x.max(-1, /*keepdim=*/true));
  const at::Tensor max = here.clone();
  group.all_reduce(max, collectives::ReduceOp::kMax)->wait();
  at::Tensor sums = at::empty({x.size(0), 2}, max.options());
  // The target's logit, before torch's ops overwrite x.
  const at::Tensor target_logit = x.gather(-1, column).to(max.scalar_type());
  sums.select(1, 1).copy_(at::where(mine, target_logit - max, 0).squeeze(-1));
  sums.select(1, 0).copy_(columns.use_kernels ? (here - max).exp_().squeeze(-1) : x.sub_(max).exp_().sum(-1));
  group.all_reduce(sums, collectives::ReduceOp::kSum)->wait();
  const at::Tensor sum = sums.select(1, 0).unsqueeze(-1);
  const at::Tensor losses = at::where(kept, sum.log() - sums.select(1, 1).unsqueeze(-1), 0).squeeze(-1);
  if (!write_gradient) return {losses, at::Tensor()};
  if (columns.use_kernels) {
    // +inf zeroes an ignored row; a target outside the row (-1) is another rank's.
    const at::Tensor lse = at::where(kept, max + sum.log(), INFINITY).squeeze(-1);
    kernels::softmax_gradient_(x, at::where(mine, local, -1).squeeze(-1), lse);
  } else {
    x.div_(sum).scatter_add_(-1, column, -mine.to(x.scalar_type())).mul_(kept);
  }
  return {losses, x.to(product_type)};
}

}  // namespace

bool holds_vocabulary_rows(const std::string& name) {
  return name == "model.embed_tokens.weight" || name == "transformer.wte.weight" || name == "lm_head.weight";
}

TensorParallelCut tensor_parallel_split(const std::string& name) {
  if (holds_vocabulary_rows(name)) return {0};
  const std::int64_t groups = name.find(".c_attn.") != std::string::npos ? 3 : 1;  // q, k and v side by side
  const bool conv1d = name.find(".c_") != std::string::npos;
  if (names(name, kOutputCut, "weight")) return {conv1d ? 1 : 0, groups};
  if (names(name, kOutputCut, "bias") || names(name, kOutputCut, "lora_B.weight")) return {0, groups};
  if (names(name, kInputCut, "weight")) return {conv1d ? 0 : 1};
  if (names(name, kInputCut, "lora_A.weight")) return {1};
  return {};
}

bool tensor_parallel_partial_gradient(const std::string& name, bool sequence_parallel) {
  const bool norm = name.ends_with("layernorm.weight") || name == "model.norm.weight" ||
                    name.find(".ln_") != std::string::npos;
  // Added to each rank's own tokens after the sum (GPT-2).
  const bool own_tokens = name == "transformer.wpe.weight" || names(name, kInputCut, "bias");
  return names(name, kOutputCut, "lora_A.weight") || names(name, kInputCut, "lora_B.weight") ||
         (sequence_parallel && (norm || own_tokens));
}

void check_tensor_parallel_degree(const ModelConfig& config, std::int64_t degree, std::string_view setting) {
  if (degree == 1) return;
  auto require_divides = [&](std::int64_t count, std::string_view what) {
    ALBION_CHECK_AS(UsageError, count % degree == 0, setting, " = ", degree, " does not divide the model's ", count,
                    " ", what);
  };
  require_divides(config.heads, "attention heads");
  require_divides(config.kv_heads, "key/value heads");
  require_divides(config.intermediate_size, "MLP features (intermediate_size)");
  if (config.vocab_size > 0) {  // a recipe can pad it; a trained model's is what it is
    require_divides(config.vocab_size, setting.starts_with("recipe key")
                                           ? "vocabulary entries (recipe key 'model.vocab_size' pads it)"
                                           : "vocabulary entries");
  }
}

at::Tensor tensor_parallel_part(const at::Tensor& whole, int dim, std::int64_t index, std::int64_t count,
                                std::int64_t groups) {
  ALBION_CHECK(whole.size(dim) % (count * groups) == 0, "cannot cut ", whole.size(dim), " into ", count, " parts",
               groups > 1 ? str_cat(" of each of ", groups, " blocks") : "");
  const std::int64_t length = whole.size(dim) / (count * groups);
  if (groups == 1) return whole.narrow(dim, index * length, length);
  // [.., groups, count x length, ..]: this rank's range of each block, then the blocks side by side.
  return whole.unflatten(dim, {groups, count * length}).narrow(dim + 1, index * length, length).flatten(dim, dim + 1);
}

std::vector<std::int64_t> tensor_parallel_global_shape(at::IntArrayRef part_shape, int dim, std::int64_t count) {
  std::vector<std::int64_t> shape = part_shape.vec();
  if (dim >= 0) shape.at(static_cast<std::size_t>(dim)) *= count;
  return shape;
}

at::Tensor in_stored_order(const at::Tensor& part, const TensorParallelCut& cut) {
  if (!stored_transposed(cut)) return part.reshape({-1});
  ALBION_CHECK(part.dim() == 2, "tensor parallelism: a tensor cut by columns must be 2-D, not ", part.sizes());
  return part.t().contiguous().view({-1});
}

std::vector<ElementRange> tensor_parallel_stored_ranges(const TensorParallelCut& cut, at::IntArrayRef part_shape,
                                                        std::int64_t index, std::int64_t count) {
  ALBION_CHECK(cut.dim == 0 || stored_transposed(cut), "tensor parallelism: a cut along dim ", cut.dim,
               " is not stored as ranges");
  std::vector<std::int64_t> shape = part_shape.vec();  // as stored
  if (stored_transposed(cut)) {
    ALBION_CHECK(shape.size() == 2, "tensor parallelism: a tensor cut by columns must be 2-D, not ", part_shape);
    std::swap(shape[0], shape[1]);
  }
  ALBION_CHECK(!shape.empty() && cut.groups > 0 && shape[0] % cut.groups == 0, "tensor parallelism: cannot cut ",
               part_shape, " in ", cut.groups, " groups");
  const std::int64_t row = c10::multiply_integers(at::IntArrayRef(shape).slice(1));  // elements per stored row
  const std::int64_t rows = shape[0] / cut.groups;                                   // this part's, per group
  std::vector<ElementRange> ranges;
  for (std::int64_t g = 0; g < cut.groups; ++g) ranges.push_back({(g * count + index) * rows * row, rows * row});
  return ranges;
}

at::Tensor read_tensor_parallel_part(const std::function<at::Tensor(std::int64_t, std::int64_t)>& read,
                                     const TensorParallelCut& cut, at::IntArrayRef part_shape, std::int64_t index,
                                     std::int64_t count, bool transposed) {
  if (transposed) {  // the part of the stored tensor, transposed back
    ALBION_CHECK(part_shape.size() == 2, "tensor parallelism: a tensor stored transposed must be 2-D, not ",
                 part_shape);
    TensorParallelCut stored_cut = cut;
    if (cut.cut()) stored_cut.dim = 1 - cut.dim;
    const std::vector<std::int64_t> stored_shape{part_shape[1], part_shape[0]};
    return read_tensor_parallel_part(read, stored_cut, stored_shape, index, count, false).t().contiguous();
  }
  const std::int64_t part_numel = c10::multiply_integers(part_shape);
  if (!cut.cut()) return read(0, part_numel).view(part_shape);
  if (cut.dim == 0) {
    std::vector<at::Tensor> pieces;
    for (const ElementRange& range : tensor_parallel_stored_ranges(cut, part_shape, index, count)) {
      pieces.push_back(read(range.offset, range.numel));
    }
    return (pieces.size() == 1 ? pieces[0] : at::cat(pieces)).view(part_shape);
  }
  const std::vector<std::int64_t> shape = tensor_parallel_global_shape(part_shape, cut.dim, count);
  return tensor_parallel_part(read(0, part_numel * count).view(shape), cut.dim, index, count, cut.groups).contiguous();
}

std::function<at::Tensor(std::int64_t, std::int64_t)> read_with_zeros_past(
    std::function<at::Tensor(std::int64_t, std::int64_t)> read, std::int64_t stored_numel, at::ScalarType dtype) {
  return [read = std::move(read), stored_numel, dtype](std::int64_t offset, std::int64_t numel) {
    const std::int64_t stored = std::clamp<std::int64_t>(stored_numel - offset, 0, numel);
    if (stored == numel) return read(offset, numel);
    if (stored == 0) return at::zeros({numel}, at::TensorOptions().dtype(dtype));
    const at::Tensor head = read(offset, stored);
    return at::cat({head, at::zeros({numel - stored}, head.options())});
  };
}

at::Tensor gather_tensor_parallel(const at::Tensor& part, int dim, collectives::Communicator& group,
                                  std::int64_t groups) {
  const std::int64_t count = group.size();
  const at::Tensor input = part.contiguous().reshape({-1});
  at::Tensor gathered = at::empty({count * input.numel()}, input.options());
  group.all_gather(gathered, input)->wait();
  // Rank-major: [count, part...], each part's `dim` as [groups, length]; the ranks' ranges go back
  // side by side within each block.
  std::vector<std::int64_t> stacked = {count};
  for (std::int64_t size : part.sizes()) stacked.push_back(size);
  return gathered.view(stacked)
      .unflatten(dim + 1, {groups, part.size(dim) / groups})
      .movedim(0, dim + 1)
      .reshape(tensor_parallel_global_shape(part.sizes(), dim, count));
}

at::Tensor enter_tensor_parallel(const at::Tensor& x, const std::shared_ptr<collectives::Communicator>& group) {
  return Enter::apply(x, group);
}

at::Tensor leave_tensor_parallel(const at::Tensor& partial, const std::shared_ptr<collectives::Communicator>& group) {
  return Leave::apply(partial, group);
}

at::Tensor gather_tokens(const at::Tensor& part, const std::shared_ptr<collectives::Communicator>& group) {
  return GatherTokens::apply(part, group);
}

at::Tensor scatter_tokens(const at::Tensor& whole, const std::shared_ptr<collectives::Communicator>& group) {
  return ScatterTokens::apply(whole, group);
}

std::vector<at::Tensor> gathered_products(const at::Tensor& part, const std::vector<at::Tensor>& weights,
                                          const std::vector<at::Tensor>& biases,
                                          const std::shared_ptr<collectives::Communicator>& group) {
  ALBION_CHECK(biases.size() == weights.size(), "gathered_products: ", weights.size(), " weights and ",
               biases.size(), " biases");
  std::vector<at::Tensor> defined_biases;
  std::vector<std::int64_t> bias_of;
  for (const at::Tensor& bias : biases) {
    bias_of.push_back(bias.defined() ? static_cast<std::int64_t>(defined_biases.size()) : -1);
    if (bias.defined()) defined_biases.push_back(bias);
  }
  return GatheredProducts::apply(part, at::TensorList(weights), at::TensorList(defined_biases), bias_of, group);
}

at::Tensor vocab_parallel_linear_cross_entropy_sum(const at::Tensor& hidden, const at::Tensor& weight,
                                                  const at::Tensor& targets, std::int64_t ignore_index,
                                                  collectives::Communicator& group, std::int64_t chunk_rows,
                                                  std::int64_t vocabulary, std::optional<bool> use_kernels) {
  const std::int64_t first_id = group.rank() * weight.size(0);
  const std::int64_t rows = weight.size(0) * group.size();
  if (vocabulary == 0) vocabulary = rows;
  ALBION_CHECK(vocabulary > 0 && vocabulary <= rows, "vocab_parallel_linear_cross_entropy_sum: a vocabulary of ",
               vocabulary, " in ", rows, " rows");
  if (!hidden.is_cuda()) {  // checking on a GPU would wait for it
    const at::Tensor valid = ((targets >= 0) & (targets < vocabulary)) | (targets == ignore_index);
    ALBION_CHECK_AS(UsageError, valid.all().item<bool>(), "vocab_parallel_linear_cross_entropy_sum: a target is "
                    "outside [0, ", vocabulary, ")");
  }
  const ChunkColumns columns{first_id, weight.size(0),
                             std::clamp<std::int64_t>(vocabulary - first_id, 0, weight.size(0)),
                             use_kernels.value_or(kernels::runs_kernels(weight))};
  const kernels::ChunkCrossEntropy chunk_loss = [&](at::Tensor logits, const at::Tensor& chunk_targets,
                                                    std::int64_t ignore, bool write_gradient) {
    return vocab_parallel_chunk_loss(std::move(logits), chunk_targets, ignore, write_gradient, columns, group);
  };
  // The products padded where the softmax runs in the kernels (Note [Padded vocabulary]).
  return kernels::linear_cross_entropy_sum(hidden, weight, targets, ignore_index, chunk_rows, chunk_loss,
                                           columns.use_kernels);
}

}  // namespace albion::models
