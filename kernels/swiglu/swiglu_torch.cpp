// File: kernels/swiglu/swiglu_torch.cpp
// Torch layer of SwiGLU: boundary checks, dispatch to the CUDA launchers or the CPU reference, and
// the autograd function.
#include <torch/csrc/autograd/custom_function.h>

#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "kernels/swiglu/swiglu.cuh"
#include "kernels/swiglu/swiglu.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// `what_up` names the second operand: up, or the backward's grad_out.
void check_operands(const at::Tensor& gate, const at::Tensor& up, const char* what_up = "swiglu up") {
  check_same_device_and_dtype(gate, up, "swiglu gate", what_up);
  check_contiguous(gate, "swiglu gate");
  check_contiguous(up, what_up);
  ALBION_CHECK_AS(UsageError, gate.sizes() == up.sizes(), "swiglu: gate of shape ", gate.sizes(),
                  " does not match ", what_up, " of shape ", up.sizes());
  ALBION_CHECK_AS(UsageError, gate.is_cuda() || gate.is_cpu(), "swiglu: unsupported device ", gate.device());
  if (runs_kernels(gate)) kernel_dtype(gate, "swiglu gate");  // fp32 or bf16 on the GPU
}

// The CPU reference in `T` on contiguous copies; the result is cast back to the inputs' dtype.
template <typename T>
std::vector<at::Tensor> on_cpu(std::initializer_list<at::Tensor> inputs, int outputs,
                               const std::function<void(const std::vector<at::Tensor>&, std::vector<at::Tensor>&)>& run) {
  const at::ScalarType type = c10::CppTypeToScalarType<T>::value;
  std::vector<at::Tensor> in;
  for (const at::Tensor& t : inputs) in.push_back(t.to(type).contiguous());
  std::vector<at::Tensor> out;
  for (int i = 0; i < outputs; ++i) out.push_back(at::empty_like(in.front()));
  run(in, out);
  const at::ScalarType original = inputs.begin()->scalar_type();
  for (at::Tensor& t : out) t = t.to(original);
  return out;
}

}  // namespace

at::Tensor swiglu_forward(const at::Tensor& gate, const at::Tensor& up) {
  check_operands(gate, up);
  if (runs_kernels(gate)) {
    const KernelLaunch launch(gate.device());
    at::Tensor out = at::empty_like(gate);
    SwiGluForwardParams p;
    p.gate = gate.data_ptr();
    p.up = up.data_ptr();
    p.out = out.data_ptr();
    p.numel = gate.numel();
    p.dtype = kernel_dtype(gate, "swiglu gate");
    launch_swiglu_forward(p, launch.stream());
    return out;
  }
  const auto run = [](auto tag, const at::Tensor& g, const at::Tensor& u) {
    using T = decltype(tag);
    return on_cpu<T>({g, u}, 1, [](const std::vector<at::Tensor>& in, std::vector<at::Tensor>& out) {
      swiglu_forward_reference<T>(in[0].data_ptr<T>(), in[1].data_ptr<T>(), out[0].data_ptr<T>(), in[0].numel());
    })[0];
  };
  return gate.scalar_type() == at::kDouble ? run(double{}, gate, up) : run(float{}, gate, up);
}

std::pair<at::Tensor, at::Tensor> swiglu_backward(const at::Tensor& grad_out, const at::Tensor& gate,
                                                  const at::Tensor& up) {
  check_operands(gate, up);
  check_operands(gate, grad_out, "swiglu grad_out");
  if (runs_kernels(gate)) {
    const KernelLaunch launch(gate.device());
    at::Tensor grad_gate = at::empty_like(gate);
    at::Tensor grad_up = at::empty_like(up);
    SwiGluBackwardParams p;
    p.grad_out = grad_out.data_ptr();
    p.gate = gate.data_ptr();
    p.up = up.data_ptr();
    p.grad_gate = grad_gate.data_ptr();
    p.grad_up = grad_up.data_ptr();
    p.numel = gate.numel();
    p.dtype = kernel_dtype(gate, "swiglu gate");
    launch_swiglu_backward(p, launch.stream());
    return {grad_gate, grad_up};
  }
  const auto run = [](auto tag, const at::Tensor& d, const at::Tensor& g, const at::Tensor& u) {
    using T = decltype(tag);
    std::vector<at::Tensor> out =
        on_cpu<T>({d, g, u}, 2, [](const std::vector<at::Tensor>& in, std::vector<at::Tensor>& result) {
          swiglu_backward_reference<T>(in[0].data_ptr<T>(), in[1].data_ptr<T>(), in[2].data_ptr<T>(),
                                       result[0].data_ptr<T>(), result[1].data_ptr<T>(), in[0].numel());
        });
    return std::make_pair(out[0], out[1]);
  };
  return gate.scalar_type() == at::kDouble ? run(double{}, grad_out, gate, up) : run(float{}, grad_out, gate, up);
}

namespace {

class SwiGluFunction : public torch::autograd::Function<SwiGluFunction> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& gate,
                            const at::Tensor& up) {
    context->save_for_backward({gate, up});
    return swiglu_forward(gate, up);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 torch::autograd::variable_list grads) {
    const torch::autograd::variable_list saved = context->get_saved_variables();
    auto [grad_gate, grad_up] = swiglu_backward(grads[0].contiguous(), saved[0], saved[1]);
    return {grad_gate, grad_up};
  }
};

}  // namespace

at::Tensor swiglu(const at::Tensor& gate, const at::Tensor& up) {
  return SwiGluFunction::apply(gate.contiguous(), up.contiguous());
}

}  // namespace albion::kernels
