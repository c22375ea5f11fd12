// File: collectives/nccl_communicator.h
// Owns one NCCL communicator (RAII: copy deleted, move allowed; destroyed on scope exit, or
// aborted explicitly on failure paths so a dead peer cannot hang the destructor).
// Bootstrapped from an MPI communicator it is given: rank 0 creates the unique id, MPI_Bcast shares
// it, every rank joins with ncclCommInitRank on its own CUDA device.
#pragma once

#include <ATen/ATen.h>
#include <mpi.h>
#include <nccl.h>

namespace albion::collectives {

class NcclCommunicator {
 public:
  // Collective over `comm`. `device` is this rank's CUDA device index.
  NcclCommunicator(MPI_Comm comm, int device);
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;
  NcclCommunicator(NcclCommunicator&& other) noexcept;
  NcclCommunicator& operator=(NcclCommunicator&& other) noexcept;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int device() const { return device_; }

  // In-place sum over all ranks on the tensor's current CUDA stream (asynchronous with respect to
  // the host, like any kernel). The tensor must be a contiguous CUDA tensor on this device.
  void all_reduce_sum(at::Tensor& tensor);

  // Aborts outstanding operations and frees the communicator without waiting for peers.
  void abort() noexcept;

 private:
  void release() noexcept;

  ncclComm_t comm_ = nullptr;
  int rank_ = 0;
  int size_ = 0;
  int device_ = -1;
};

// NCCL's data type for a torch dtype; throws UsageError for types NCCL cannot reduce.
ncclDataType_t nccl_data_type(at::ScalarType type);

}  // namespace albion::collectives
