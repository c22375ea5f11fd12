// File: tests/collectives/nccl_communicator_test.cpp
// NCCL on a one-rank communicator (label gpu; run as one plain process, MPI as a singleton), and
// the dtype mapping, which needs no GPU.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include "collectives/library_versions.h"
#include "collectives/nccl_communicator.h"
#include "runtime/base/error.h"
#include "tests/support/cuda_available.h"

namespace albion::collectives {
namespace {

TEST(NcclDataType, MapsTorchDtypes) {
  EXPECT_EQ(nccl_data_type(at::kBFloat16), ncclBfloat16);
  EXPECT_EQ(nccl_data_type(at::kFloat), ncclFloat32);
  EXPECT_EQ(nccl_data_type(at::kLong), ncclInt64);
  EXPECT_THROW(nccl_data_type(at::kBool), UsageError);
}

TEST(NcclVersion, IsTheLoadedLibrarys) {
  // The wheel's NCCL 2.x; "unknown" would mean the library did not answer.
  EXPECT_EQ(nccl_version().rfind("2.", 0), 0u) << nccl_version();
}

TEST(NcclCommunicatorCuda, OneRankAllReduceIsIdentity) {
  ALBION_SKIP_WITHOUT_CUDA();
  NcclCommunicator nccl(MPI_COMM_SELF, 0, "self", nullptr);
  EXPECT_EQ(nccl.size(), 1);
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    at::Tensor values = at::arange(1001, at::TensorOptions().dtype(dtype).device(at::kCUDA, 0));
    at::Tensor expected = values.clone();
    nccl.all_reduce(values, ReduceOp::kSum)->wait();
    EXPECT_TRUE(values.equal(expected)) << "dtype " << dtype;
  }
}

TEST(NcclCommunicatorCuda, RejectsCpuTensors) {
  ALBION_SKIP_WITHOUT_CUDA();
  NcclCommunicator nccl(MPI_COMM_SELF, 0, "self", nullptr);
  at::Tensor cpu = at::ones({4});
  EXPECT_THROW(nccl.all_reduce(cpu, ReduceOp::kSum), UsageError);
}

}  // namespace
}  // namespace albion::collectives
