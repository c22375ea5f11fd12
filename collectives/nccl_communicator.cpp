// File: collectives/nccl_communicator.cpp
#include "collectives/nccl_communicator.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <utility>

#include "collectives/mpi_check.h"
#include "collectives/nccl_check.h"
#include "runtime/base/check.h"

namespace albion::collectives {

ncclDataType_t nccl_data_type(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return ncclFloat32;
    case at::kDouble: return ncclFloat64;
    case at::kHalf: return ncclFloat16;
    case at::kBFloat16: return ncclBfloat16;
    case at::kInt: return ncclInt32;
    case at::kLong: return ncclInt64;
    case at::kByte: return ncclUint8;
    case at::kChar: return ncclInt8;
    default: throw UsageError(str_cat("NCCL cannot reduce tensors of dtype ", type));
  }
}

NcclCommunicator::NcclCommunicator(MPI_Comm comm, int device) : device_(device) {
  ALBION_MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  ALBION_MPI_CHECK(MPI_Comm_size(comm, &size_));
  ncclUniqueId id{};
  if (rank_ == 0) ALBION_NCCL_CHECK(ncclGetUniqueId(&id), nullptr);
  ALBION_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm));
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  ALBION_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_), nullptr);
}

NcclCommunicator::~NcclCommunicator() { release(); }

NcclCommunicator::NcclCommunicator(NcclCommunicator&& other) noexcept
    : comm_(std::exchange(other.comm_, nullptr)),
      rank_(other.rank_),
      size_(other.size_),
      device_(other.device_) {}

NcclCommunicator& NcclCommunicator::operator=(NcclCommunicator&& other) noexcept {
  if (this != &other) {
    release();
    comm_ = std::exchange(other.comm_, nullptr);
    rank_ = other.rank_;
    size_ = other.size_;
    device_ = other.device_;
  }
  return *this;
}

void NcclCommunicator::all_reduce_sum(at::Tensor& tensor) {
  ALBION_CHECK(comm_ != nullptr, "all_reduce on a released NCCL communicator");
  ALBION_CHECK_AS(UsageError, tensor.is_cuda() && tensor.get_device() == device_,
                  "NCCL all_reduce: tensor on ", tensor.device(), ", expected cuda:", device_);
  ALBION_CHECK_AS(UsageError, tensor.is_contiguous(), "NCCL all_reduce: tensor must be contiguous");
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device_).stream();
  ALBION_NCCL_CHECK(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(),
                                  static_cast<size_t>(tensor.numel()),
                                  nccl_data_type(tensor.scalar_type()), ncclSum, comm_, stream),
                    comm_);
}

void NcclCommunicator::abort() noexcept {
  if (comm_ != nullptr) ncclCommAbort(std::exchange(comm_, nullptr));
}

void NcclCommunicator::release() noexcept {
  if (comm_ != nullptr) ncclCommDestroy(std::exchange(comm_, nullptr));
}

}  // namespace albion::collectives
