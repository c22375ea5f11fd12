// File: bench/cross_entropy_memory.cpp
// Peak memory of the LM head + cross-entropy, forward and backward, eager (linear, then
// cross_entropy) vs kernels::linear_cross_entropy_sum (chunked), one mode per process:
//
//   build/bench/cross_entropy_memory eager|chunked [TOKENS] [VOCAB] [HIDDEN] [cpu|cuda] [fp32|bf16]
//   mpirun -np N build/bench/cross_entropy_memory vocab-parallel [TOKENS] [VOCAB] [HIDDEN] cpu [fp32|bf16]
//
// vocab-parallel: the LM head cut by vocabulary over the N ranks (tensor parallelism), each rank
// computing models::vocab_parallel_linear_cross_entropy_sum over its V / N rows (MPI, CPU); rank 0
// prints. Its eager counterpart is `eager` with VOCAB / N: one rank's columns, unchunked.
//
// Prints the peak resident set (CPU) or the caching allocator's peak (CUDA) above what the inputs
// take, and the seconds. Defaults: 8,192 tokens, Llama 3's 128,256-entry vocabulary, hidden 512,
// fp32; bf16 runs both under bf16 autocast over fp32 inputs, as the runtime trains.
#include <ATen/ATen.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <mpi.h>
#include <sys/resource.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "collectives/mpi_communicator.h"
#include "kernels/common/autocast_scope.h"
#include "kernels/cross_entropy/linear_cross_entropy.h"
#include "runtime/models/tensor_parallel.h"

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

// The peak above the inputs of one forward + backward, printed as one line (by rank 0 of `group`,
// which cuts the vocabulary when it is not null).
void measure(const std::string& mode, std::int64_t tokens, std::int64_t vocab, std::int64_t hidden_size,
             const at::Device& device, bool autocast, albion::collectives::Communicator* group) {
  const albion::kernels::Bf16AutocastScope scope(device.type(), autocast);
  at::manual_seed(0);
  at::Tensor hidden = at::randn({tokens, hidden_size}, at::TensorOptions().device(device)).requires_grad_(true);
  // A rank of a cut vocabulary holds only its rows (never the whole table, which would lower the
  // peak measured above the inputs once freed).
  if (group != nullptr && vocab % group->size() != 0) throw std::invalid_argument("VOCAB must divide over the ranks");
  const std::int64_t rows = group != nullptr ? vocab / group->size() : vocab;
  at::Tensor weight = (at::randn({rows, hidden_size}, at::TensorOptions().device(device)) * 0.02).requires_grad_(true);
  at::Tensor targets = at::randint(vocab, {tokens}, at::TensorOptions().dtype(at::kLong).device(device));
  const double inputs = peak_bytes(device);
  const auto start = std::chrono::steady_clock::now();
  at::Tensor loss;
  if (mode == "eager") {
    loss = at::cross_entropy_loss(at::linear(hidden, weight), targets, {}, at::Reduction::Sum);
  } else if (mode == "chunked") {
    loss = albion::kernels::linear_cross_entropy_sum(hidden, weight, targets);
  } else {
    loss = albion::models::vocab_parallel_linear_cross_entropy_sum(hidden, weight, targets, -100, *group);
  }
  loss.backward();
  const double loss_value = loss.item<double>();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (group != nullptr && group->rank() != 0) return;
  std::printf("%s tokens=%lld vocab=%lld hidden=%lld device=%s precision=%s loss=%.6e peak_above_inputs_MB=%.0f "
              "seconds=%.2f\n",
              mode.c_str(), static_cast<long long>(tokens), static_cast<long long>(vocab),
              static_cast<long long>(hidden_size), device.str().c_str(), autocast ? "bf16-autocast" : "fp32", loss_value,
              (peak_bytes(device) - inputs) / (1 << 20), seconds);
}

int usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s eager|chunked|vocab-parallel [TOKENS] [VOCAB] [HIDDEN] [cpu|cuda] [fp32|bf16]\n",
               argv0);
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
  const bool vocab_parallel = mode == "vocab-parallel";
  if ((mode != "eager" && mode != "chunked" && !vocab_parallel) || tokens == 0 || vocab == 0 || hidden_size == 0 ||
      (device_name != "cpu" && device_name != "cuda") || (precision != "fp32" && precision != "bf16") ||
      (vocab_parallel && device_name != "cpu")) {
    return usage(argv[0]);
  }
  const at::Device device = device_name == "cuda" ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
  if (device.is_cuda() && c10::cuda::device_count() == 0) {
    std::fprintf(stderr, "cross_entropy_memory: no CUDA device\n");
    return 1;
  }
  // One line, not torch's backtrace: the GPU check's log keeps each run to its result or its error.
  try {
    if (vocab_parallel) {
      int provided = 0;  // the communicator runs its operations on a thread of its own
      MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
      {
        albion::collectives::MpiCommunicator group(MPI_COMM_WORLD, "tensor", nullptr);
        measure(mode, tokens, vocab, hidden_size, device, precision == "bf16", &group);
      }
      MPI_Finalize();
    } else {
      measure(mode, tokens, vocab, hidden_size, device, precision == "bf16", nullptr);
    }
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "cross_entropy_memory %s: %s\n", mode.c_str(), e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cross_entropy_memory %s: %s\n", mode.c_str(), e.what());
    return 1;
  }
  return 0;
}
