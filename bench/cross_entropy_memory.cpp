// File: bench/cross_entropy_memory.cpp
// Peak memory of the LM head + cross-entropy, forward and backward, eager (linear, then
// cross_entropy) vs kernels::linear_cross_entropy_sum (chunked), one mode per process:
//
//   build/bench/cross_entropy_memory eager|chunked [TOKENS] [VOCAB] [HIDDEN] [cpu|cuda] [fp32|bf16]
//
// Prints the peak resident set (CPU) or the caching allocator's peak (CUDA) above what the inputs
// take, and the seconds. Defaults: 8,192 tokens, Llama 3's 128,256-entry vocabulary, hidden 512,
// fp32; bf16 runs both under bf16 autocast over fp32 inputs, as the runtime trains.
#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <sys/resource.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/common/autocast_scope.h"
#include "kernels/cross_entropy/linear_cross_entropy.h"

namespace {

double peak_bytes(const at::Device& device) {
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak);
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) * 1024;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "chunked";
  const std::int64_t tokens = argc > 2 ? std::stoll(argv[2]) : 8192;
  const std::int64_t vocab = argc > 3 ? std::stoll(argv[3]) : 128256;
  const std::int64_t hidden_size = argc > 4 ? std::stoll(argv[4]) : 512;
  const at::Device device = argc > 5 && std::strcmp(argv[5], "cuda") == 0 ? at::Device(at::kCUDA, 0) : at::kCPU;
  const bool autocast = argc > 6 && std::strcmp(argv[6], "bf16") == 0;
  if (argc > 6 && !autocast && std::strcmp(argv[6], "fp32") != 0) {
    std::fprintf(stderr, "cross_entropy_memory: precision must be fp32 or bf16, not '%s'\n", argv[6]);
    return 2;
  }
  const albion::kernels::Bf16AutocastScope scope(device.type(), autocast);
  at::manual_seed(0);
  at::Tensor hidden = at::randn({tokens, hidden_size}, at::TensorOptions().device(device)).requires_grad_(true);
  at::Tensor weight = (at::randn({vocab, hidden_size}, at::TensorOptions().device(device)) * 0.02).requires_grad_(true);
  at::Tensor targets = at::randint(vocab, {tokens}, at::TensorOptions().dtype(at::kLong).device(device));
  const double inputs = peak_bytes(device);
  const auto start = std::chrono::steady_clock::now();
  at::Tensor loss = mode == "eager"
                        ? at::cross_entropy_loss(at::linear(hidden, weight), targets, {}, at::Reduction::Sum)
                        : albion::kernels::linear_cross_entropy_sum(hidden, weight, targets);
  loss.backward();
  const double loss_value = loss.item<double>();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s tokens=%lld vocab=%lld hidden=%lld device=%s precision=%s loss=%.6e peak_above_inputs_MB=%.0f "
              "seconds=%.2f\n",
              mode.c_str(), static_cast<long long>(tokens), static_cast<long long>(vocab),
              static_cast<long long>(hidden_size), device.str().c_str(), autocast ? "bf16-autocast" : "fp32", loss_value,
              (peak_bytes(device) - inputs) / (1 << 20), seconds);
  return 0;
}
