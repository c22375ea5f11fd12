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
#include <c10/cuda/CUDAFunctions.h>
#include <sys/resource.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
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

// The peak above the inputs of one forward + backward, printed as one line.
void measure(const std::string& mode, std::int64_t tokens, std::int64_t vocab, std::int64_t hidden_size,
             const at::Device& device, bool autocast) {
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
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s eager|chunked [TOKENS] [VOCAB] [HIDDEN] [cpu|cuda] [fp32|bf16]\n", argv0);
  return 2;
}

// A positive count, or 0 for anything else.
std::int64_t count(const char* text) {
  char* end = nullptr;
  const long long value = std::strtoll(text, &end, 10);
  return *text != '\0' && *end == '\0' && value > 0 ? value : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 7) return usage(argv[0]);
  const std::string mode = argv[1];
  const std::int64_t tokens = argc > 2 ? count(argv[2]) : 8192;
  const std::int64_t vocab = argc > 3 ? count(argv[3]) : 128256;
  const std::int64_t hidden_size = argc > 4 ? count(argv[4]) : 512;
  const std::string device_name = argc > 5 ? argv[5] : "cpu";
  const std::string precision = argc > 6 ? argv[6] : "fp32";
  if ((mode != "eager" && mode != "chunked") || tokens == 0 || vocab == 0 || hidden_size == 0 ||
      (device_name != "cpu" && device_name != "cuda") || (precision != "fp32" && precision != "bf16")) {
    return usage(argv[0]);
  }
  const at::Device device = device_name == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (device.is_cuda() && c10::cuda::device_count() == 0) {
    std::fprintf(stderr, "cross_entropy_memory: no CUDA device\n");
    return 1;
  }
  // One line, not torch's backtrace: the GPU check's log keeps each run to its result or its error.
  try {
    measure(mode, tokens, vocab, hidden_size, device, precision == "bf16");
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "cross_entropy_memory %s: %s\n", mode.c_str(), e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cross_entropy_memory %s: %s\n", mode.c_str(), e.what());
    return 1;
  }
  return 0;
}
