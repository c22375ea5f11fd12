// File: collectives/nccl_communicator.h
// The Communicator for CUDA tensors, over NCCL. Bootstrapped from an MPI communicator it is given:
// rank 0 creates the unique id, MPI_Bcast shares it, every rank joins with ncclCommInitRank on its
// own device. Sub-communicators come from ncclCommSplit.
//
// Stream order (Note [NCCL stream order]): an operation waits for the work already queued on the
// caller's current stream, runs on the communicator's own high-priority stream (so it overlaps
// the caller's kernels), and Work::wait() makes the caller's current stream wait for it; the host
// never blocks except in barrier(). Operands are recorded on the communication stream so the
// caching allocator cannot reuse their memory early.
//
// Failure: the watchdog polls ncclCommGetAsyncError and aborts the communicator (ncclCommAbort)
// before MPI_Abort, so no rank hangs on a dead peer.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <mpi.h>
#include <nccl.h>

#include <memory>
#include <mutex>
#include <string>

#include "collectives/communicator.h"
#include "collectives/watchdog.h"

namespace albion::collectives {

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `comm`. `device` is this rank's CUDA device index. `watchdog` may be null.
  NcclCommunicator(MPI_Comm comm, int device, std::string name, std::shared_ptr<Watchdog> watchdog);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  const char* backend() const override { return "nccl"; }
  int device() const { return device_; }

  std::shared_ptr<Work> all_reduce(const at::Tensor& tensor, ReduceOp op) override;
  std::shared_ptr<Work> reduce_scatter(const at::Tensor& output, const at::Tensor& input, ReduceOp op) override;
  std::shared_ptr<Work> all_gather(const at::Tensor& output, const at::Tensor& input) override;
  std::shared_ptr<Work> broadcast(const at::Tensor& tensor, int root) override;
  std::shared_ptr<Work> reduce(const at::Tensor& tensor, ReduceOp op, int root) override;
  std::shared_ptr<Work> send(const at::Tensor& tensor, int peer) override;
  std::shared_ptr<Work> recv(const at::Tensor& tensor, int peer) override;
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;

  // Aborts outstanding operations and frees the communicator without waiting for peers.
  void abort() noexcept;

  // The handle shared with the watchdog's probe and abort hook, which may outlive this object.
  struct Handle {
    std::mutex mutex;
    ncclComm_t comm = nullptr;
  };

 private:
  NcclCommunicator(std::shared_ptr<Handle> handle, int device, std::string name,
                   std::shared_ptr<Watchdog> watchdog);
  void attach_to_watchdog();
  void check_cuda_operand(std::string_view operation, const at::Tensor& tensor) const;
  ncclComm_t comm() const;
  // Orders `issue(stream)` after the caller's stream, records `operands` on the communication
  // stream, and returns a Work that completes when the issued operations do.
  template <typename Issue>
  std::shared_ptr<Work> launch(std::string description, std::initializer_list<at::Tensor> operands, Issue issue);

  std::shared_ptr<Handle> handle_;
  int rank_ = 0;
  int size_ = 0;
  int device_ = -1;
  std::string name_;
  std::shared_ptr<Watchdog> watchdog_;
  c10::cuda::CUDAStream stream_;
};

// NCCL's data type for a torch dtype; throws UsageError for types NCCL cannot carry.
ncclDataType_t nccl_data_type(at::ScalarType type);

}  // namespace albion::collectives
