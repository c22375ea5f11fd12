// File: runtime/models/tensor_parallel.cpp
#include "runtime/models/tensor_parallel.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include <array>
#include <string_view>

#include "runtime/base/check.h"

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

// The layers cut by their output rows, and by their input columns.
constexpr std::array<std::string_view, 5> kRowCut = {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"};
constexpr std::array<std::string_view, 2> kColumnCut = {"o_proj", "down_proj"};

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

class Enter : public torch::autograd::Function<Enter> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x,
                            std::shared_ptr<collectives::Communicator> group) {
    ctx->saved_data["group"] = at::IValue::make_capsule(c10::make_intrusive<HeldGroup>(std::move(group)));
    return x;  // autograd makes the output a view of x: no copy
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto held = c10::static_intrusive_pointer_cast<HeldGroup>(ctx->saved_data["group"].toCapsule());
    return {summed_over(grad_outputs[0], *held->group), at::Tensor()};
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

// Saves the softmax over the whole vocabulary, this rank's columns of it, for the backward pass.
class VocabParallelCrossEntropy : public torch::autograd::Function<VocabParallelCrossEntropy> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets,
                            std::int64_t first_id, const std::shared_ptr<collectives::Communicator>& group) {
    const at::Tensor x = logits.to(at::promote_types(logits.scalar_type(), at::kFloat));
    at::Tensor max = std::get<0>(x.max(-1, /*keepdim=*/true)).contiguous();
    group->all_reduce(max, collectives::ReduceOp::kMax)->wait();
    const at::Tensor exponentials = (x - max).exp();
    const at::Tensor sum = summed_over(exponentials.sum(-1, /*keepdim=*/true), *group);
    // The target's logit from the rank whose columns hold it, 0 from the others.
    const at::Tensor local = targets - first_id;
    const at::Tensor mine = (local >= 0) & (local < x.size(-1));
    const at::Tensor column = at::where(mine, local, 0).unsqueeze(-1);
    const at::Tensor target_logit =
        summed_over(at::where(mine.unsqueeze(-1), x.gather(-1, column) - max, 0), *group);
    ctx->save_for_backward({exponentials / sum, column, mine});
    ctx->saved_data["dtype"] = static_cast<std::int64_t>(logits.scalar_type());
    return (sum.log() - target_logit).squeeze(-1);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& softmax = saved[0];
    // d loss / d logits = softmax - one_hot(target), the one-hot on the target's rank only.
    at::Tensor grad = softmax.scatter_add(-1, saved[1], -saved[2].unsqueeze(-1).to(softmax.scalar_type()));
    grad = grad * grad_outputs[0].unsqueeze(-1).to(grad.scalar_type());
    const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt());
    return {grad.to(dtype), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

int tensor_parallel_split(const std::string& name) {
  if (name == "model.embed_tokens.weight" || name == "lm_head.weight") return 0;
  if (names(name, kRowCut, "weight") || names(name, kRowCut, "bias") || names(name, kRowCut, "lora_B.weight")) {
    return 0;
  }
  if (names(name, kColumnCut, "weight") || names(name, kColumnCut, "lora_A.weight")) return 1;
  return -1;
}

bool tensor_parallel_partial_gradient(const std::string& name) {
  return names(name, kRowCut, "lora_A.weight") || names(name, kColumnCut, "lora_B.weight");
}

void check_tensor_parallel_degree(const ModelConfig& config, std::int64_t degree) {
  if (degree == 1) return;
  ALBION_CHECK_AS(UsageError, config.architecture == Architecture::kLlama,
                  "recipe key 'parallel.tensor' = ", degree, ": tensor parallelism cuts Llama-family models "
                  "(llama-*, qwen2.5-*, tiny-llama); this model is ", architecture_name(config.architecture));
  auto require_divides = [&](std::int64_t count, const char* what) {
    ALBION_CHECK_AS(UsageError, count % degree == 0, "recipe key 'parallel.tensor' = ", degree,
                    " does not divide the model's ", count, " ", what);
  };
  require_divides(config.heads, "attention heads");
  require_divides(config.kv_heads, "key/value heads");
  require_divides(config.intermediate_size, "MLP features (intermediate_size)");
  if (config.vocab_size > 0) require_divides(config.vocab_size, "vocabulary entries");
}

at::Tensor tensor_parallel_part(const at::Tensor& whole, int dim, std::int64_t index, std::int64_t count) {
  ALBION_CHECK(whole.size(dim) % count == 0, "cannot cut ", whole.size(dim), " into ", count, " parts");
  const std::int64_t length = whole.size(dim) / count;
  return whole.narrow(dim, index * length, length);
}

std::vector<std::int64_t> tensor_parallel_global_shape(at::IntArrayRef part_shape, int dim, std::int64_t count) {
  std::vector<std::int64_t> shape = part_shape.vec();
  if (dim >= 0) shape.at(static_cast<std::size_t>(dim)) *= count;
  return shape;
}

at::Tensor gather_tensor_parallel(const at::Tensor& part, int dim, collectives::Communicator& group) {
  const std::int64_t count = group.size();
  const at::Tensor input = part.contiguous().reshape({-1});
  at::Tensor gathered = at::empty({count * input.numel()}, input.options());
  group.all_gather(gathered, input)->wait();
  // Rank-major: [count, part...]; the parts go back side by side along `dim`.
  std::vector<std::int64_t> stacked = {count};
  for (std::int64_t size : part.sizes()) stacked.push_back(size);
  return gathered.view(stacked).movedim(0, dim).reshape(tensor_parallel_global_shape(part.sizes(), dim, count));
}

at::Tensor enter_tensor_parallel(const at::Tensor& x, const std::shared_ptr<collectives::Communicator>& group) {
  return Enter::apply(x, group);
}

at::Tensor leave_tensor_parallel(const at::Tensor& partial, const std::shared_ptr<collectives::Communicator>& group) {
  return Leave::apply(partial, group);
}

at::Tensor vocab_parallel_cross_entropy(const at::Tensor& logits, const at::Tensor& targets, std::int64_t first_id,
                                        const std::shared_ptr<collectives::Communicator>& group) {
  ALBION_CHECK(logits.dim() == 2 && targets.dim() == 1 && targets.size(0) == logits.size(0), "logits ",
               logits.sizes(), " and targets ", targets.sizes(), " must be [N, V / n] and [N]");
  return VocabParallelCrossEntropy::apply(logits, targets, first_id, group);
}

}  // namespace albion::models
