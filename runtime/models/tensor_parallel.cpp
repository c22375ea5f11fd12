// File: runtime/models/tensor_parallel.cpp
#include "runtime/models/tensor_parallel.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include <array>

#include "runtime/base/check.h"

namespace albion::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool ends_with(const std::string& name, const std::string& suffix) {
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The sum over the group, on every rank, as a new tensor.
at::Tensor summed_over(const at::Tensor& local, collectives::Communicator& group) {
  at::Tensor sum = local.contiguous().clone();
  group.all_reduce(sum, collectives::ReduceOp::kSum)->wait();
  return sum;
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

}  // namespace

int tensor_parallel_split(const std::string& name) {
  static const std::array<const char*, 8> kRows = {".q_proj.weight", ".k_proj.weight", ".v_proj.weight",
                                                   ".q_proj.bias",   ".k_proj.bias",   ".v_proj.bias",
                                                   ".gate_proj.weight", ".up_proj.weight"};
  static const std::array<const char*, 2> kColumns = {".o_proj.weight", ".down_proj.weight"};
  for (const char* suffix : kRows) {
    if (ends_with(name, suffix)) return 0;
  }
  for (const char* suffix : kColumns) {
    if (ends_with(name, suffix)) return 1;
  }
  return -1;
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

}  // namespace albion::models
