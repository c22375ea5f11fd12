// File: tests/runtime/parallel/vocab_parallel_cuda_test.cpp
// The vocabulary-parallel loss on a GPU (label gpu; one plain process, MPI as a singleton, NCCL
// over one rank): the kernels' path (each rank's rows padded for the products, the softmax in
// kernels::softmax_logsumexp and softmax_gradient_, the all-reduces through NCCL) against the
// one-process fused loss on the same GPU, in fp32 and under bf16 autocast, masked ids too. A lent
// machine has one GPU, so this is the composition's check there; under mpirun the CPU test
// (tensor_parallel_test.cpp) checks it over 2 and 4 ranks on the CPU references.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdint>
#include <string>

#include "collectives/nccl_communicator.h"
#include "kernels/common/autocast_scope.h"
#include "kernels/cross_entropy/linear_cross_entropy.h"
#include "runtime/models/tensor_parallel.h"
#include "tests/kernels/relative_error.h"
#include "tests/support/cuda_available.h"

namespace albion::models {
namespace {

TEST(VocabParallelCrossEntropyCuda, OneRankMatchesTheOneProcessFusedLoss) {
  ALBION_SKIP_WITHOUT_CUDA();
  collectives::NcclCommunicator group(MPI_COMM_SELF, 0, "self", nullptr);
  const at::TensorOptions cuda = at::TensorOptions().device(at::kCUDA, 0);
  at::manual_seed(5);
  const std::int64_t tokens = 300, vocab = 257, hidden = 64;  // 257 rows: padded to 320 for the products
  const at::Tensor hidden_states = at::randn({tokens, hidden}, cuda);
  const at::Tensor weight = at::randn({vocab, hidden}, cuda) * 0.3;
  for (const std::int64_t in_use : {vocab, std::int64_t{250}}) {
    const at::Tensor targets = at::where(at::arange(tokens, cuda.dtype(at::kLong)) % 5 == 0, -100,
                                         at::randint(in_use, {tokens}, cuda.dtype(at::kLong)));
    for (const bool autocast : {false, true}) {
      const std::string what = std::to_string(in_use) + " ids in use" + (autocast ? ", bf16 autocast" : ", fp32");
      const double tolerance = autocast ? 1e-2 : 1e-5;
      const kernels::Bf16AutocastScope scope(at::kCUDA, autocast);
      const at::Tensor parallel_hidden = hidden_states.clone().requires_grad_();
      const at::Tensor parallel_weight = weight.clone().requires_grad_();
      const at::Tensor parallel = vocab_parallel_linear_cross_entropy_sum(parallel_hidden, parallel_weight, targets,
                                                                          -100, group, /*chunk_rows=*/128, in_use);
      parallel.backward();
      const at::Tensor whole_hidden = hidden_states.clone().requires_grad_();
      const at::Tensor whole_weight = weight.clone().requires_grad_();
      const at::Tensor whole = kernels::linear_cross_entropy_sum(whole_hidden, whole_weight.narrow(0, 0, in_use),
                                                                 targets, -100, /*chunk_rows=*/128);
      whole.backward();
      EXPECT_LT(kernels::max_error_relative_to_scale(parallel, whole), tolerance) << what;
      EXPECT_LT(kernels::max_error_relative_to_scale(parallel_hidden.grad(), whole_hidden.grad()), tolerance) << what;
      EXPECT_LT(kernels::max_error_relative_to_scale(parallel_weight.grad(), whole_weight.grad()), tolerance) << what;
      EXPECT_TRUE(parallel_weight.grad().narrow(0, in_use, vocab - in_use).eq(0).all().item<bool>()) << what;
    }
  }
}

}  // namespace
}  // namespace albion::models
