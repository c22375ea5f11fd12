// File: runtime/models/activation_checkpoint.cpp
#include "runtime/models/activation_checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include <mutex>
#include <utility>
#include <vector>

#include "kernels/common/autocast_scope.h"

namespace albion::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The block, kept in the autograd context until the backward pass.
struct HeldBlock : torch::CustomClassHolder {
  explicit HeldBlock(BlockForward f) : forward(std::move(f)) {}
  BlockForward forward;
};

// The generators a block on `device` draws from: the CPU's, and the device's own when it is CUDA.
std::vector<at::Generator> default_generators(const at::Device& device) {
  std::vector<at::Generator> generators{at::detail::getDefaultCPUGenerator()};
  if (device.is_cuda()) generators.push_back(at::globalContext().defaultGenerator(device));
  return generators;
}

std::vector<at::Tensor> generator_states(std::vector<at::Generator>& generators) {
  std::vector<at::Tensor> states;
  for (at::Generator& g : generators) {
    const std::lock_guard<std::mutex> lock(g.mutex());
    states.push_back(g.get_state());
  }
  return states;
}

void set_generator_states(std::vector<at::Generator>& generators, const std::vector<at::Tensor>& states) {
  for (std::size_t i = 0; i < generators.size(); ++i) {
    const std::lock_guard<std::mutex> lock(generators[i].mutex());
    generators[i].set_state(states[i]);
  }
}

// Sets the generators to `states` for a scope; what they held comes back however the scope ends,
// so the recomputation's draws do not change the ones the training loop makes next.
class RewoundGenerators {
 public:
  RewoundGenerators(std::vector<at::Generator> generators, const std::vector<at::Tensor>& states)
      : generators_(std::move(generators)), current_(generator_states(generators_)) {
    set_generator_states(generators_, states);
  }
  ~RewoundGenerators() { set_generator_states(generators_, current_); }
  RewoundGenerators(const RewoundGenerators&) = delete;
  RewoundGenerators& operator=(const RewoundGenerators&) = delete;

 private:
  std::vector<at::Generator> generators_;
  std::vector<at::Tensor> current_;
};

class Recompute : public torch::autograd::Function<Recompute> {
 public:
  // `anchor` requires a gradient, so the output does too whatever the input's; it gets none.
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& anchor,
                            BlockForward block) {
    (void)anchor;
    std::vector<at::Generator> generators = default_generators(input.device());
    ctx->save_for_backward({input});
    ctx->saved_data["block"] = at::IValue::make_capsule(c10::make_intrusive<HeldBlock>(block));
    ctx->saved_data["generators"] = generator_states(generators);
    ctx->saved_data["autocast"] = at::autocast::is_autocast_enabled(input.device().type());
    ctx->saved_data["input_requires_grad"] = input.requires_grad();
    return block(input);  // autograd is off in here: nothing inside the block is kept
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const bool input_requires_grad = ctx->saved_data["input_requires_grad"].toBool();
    const at::Tensor input = ctx->get_saved_variables()[0].detach().requires_grad_(input_requires_grad);
    const auto block = c10::static_intrusive_pointer_cast<HeldBlock>(ctx->saved_data["block"].toCapsule());
    at::Tensor output;
    {
      const RewoundGenerators rewound(default_generators(input.device()),
                                      ctx->saved_data["generators"].toTensorVector());
      const at::AutoGradMode grad(true);
      const kernels::Bf16AutocastScope autocast(input.device().type(), ctx->saved_data["autocast"].toBool());
      output = block->forward(input);
    }
    if (output.requires_grad()) torch::autograd::backward({output}, {grad_outputs[0]});
    return {input_requires_grad ? input.grad() : at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor recomputed_in_backward(BlockForward block, const at::Tensor& input) {
  const at::Tensor anchor = at::empty({0}, input.options().dtype(at::kFloat)).requires_grad_();
  return Recompute::apply(input, anchor, std::move(block));
}

bool recompute_block(std::int64_t every, std::size_t index, bool training, bool decoding) {
  return every > 0 && training && !decoding && at::GradMode::is_enabled() &&
         index % static_cast<std::size_t>(every) == 0;
}

}  // namespace albion::models
