// File: collectives/nccl_communicator.cpp
#include "collectives/nccl_communicator.h"

#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>

#include <chrono>
#include <utility>

#include "collectives/mpi_check.h"
#include "collectives/nccl_check.h"
#include "collectives/operation_checks.h"
#include "runtime/base/check.h"

namespace albion::collectives {
namespace {

// Over one rank an average is the sum, and is asked for as one: NCCL 2.28.9's one-rank ncclAvg
// left the last element of a 4,099-element fp64 reduce-scatter unwritten (H200, communicator test).
ncclRedOp_t nccl_op(ReduceOp op, at::ScalarType type, int ranks) {
  ALBION_CHECK_AS(UsageError, at::isFloatingType(type) || op != ReduceOp::kAvg,
                  "nccl: avg of integer tensors (", type, ") is not defined; use sum");
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kAvg: return ranks == 1 ? ncclSum : ncclAvg;
    case ReduceOp::kMax: return ncclMax;
  }
  return ncclSum;
}

// Note [NCCL stream order]
// An operation is "issued" on the communication stream after an event recorded on the caller's
// stream, so it sees every value the caller computed before issuing it. The Work records a second
// event after it; wait() inserts that event into the caller's (then current) stream. No host
// synchronisation anywhere on the fast path, as in torch's ProcessGroupNCCL.
class NcclWork final : public Work {
 public:
  NcclWork(std::string description, const c10::cuda::CUDAStream& stream, int device)
      : description_(std::move(description)), device_(device), issued_(std::chrono::steady_clock::now()) {
    done_.record(stream);
  }
  void wait() override {
    c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
    done_.block(c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_)));
  }
  bool completed() override {
    std::lock_guard lock(query_mutex_);
    return done_.query();
  }
  double running_seconds() override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - issued_).count();
  }
  const std::string& description() const override { return description_; }

 private:
  const std::string description_;
  const int device_;
  const std::chrono::steady_clock::time_point issued_;
  std::mutex query_mutex_;
  at::cuda::CUDAEvent done_{cudaEventDisableTiming};
};

std::shared_ptr<NcclCommunicator::Handle> init_from_mpi(MPI_Comm comm, int device) {
  int rank = 0;
  int size = 0;
  ALBION_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  ALBION_MPI_CHECK(MPI_Comm_size(comm, &size));
  ncclUniqueId id{};
  if (rank == 0) ALBION_NCCL_CHECK(ncclGetUniqueId(&id), nullptr);
  ALBION_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm));
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  auto handle = std::make_shared<NcclCommunicator::Handle>();
  ALBION_NCCL_CHECK(ncclCommInitRank(&handle->comm, size, id, rank), nullptr);
  return handle;
}

}  // namespace

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
    default: throw UsageError(str_cat("NCCL cannot carry tensors of dtype ", type));
  }
}

NcclCommunicator::NcclCommunicator(MPI_Comm comm, int device, std::string name,
                                   std::shared_ptr<Watchdog> watchdog)
    : NcclCommunicator(init_from_mpi(comm, device), device, std::move(name), std::move(watchdog)) {}

NcclCommunicator::NcclCommunicator(std::shared_ptr<Handle> handle, int device, std::string name,
                                   std::shared_ptr<Watchdog> watchdog)
    : handle_(std::move(handle)),
      device_(device),
      name_(std::move(name)),
      watchdog_(std::move(watchdog)),
      stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, static_cast<c10::DeviceIndex>(device))) {
  ALBION_NCCL_CHECK(ncclCommUserRank(handle_->comm, &rank_), handle_->comm);
  ALBION_NCCL_CHECK(ncclCommCount(handle_->comm, &size_), handle_->comm);
  attach_to_watchdog();
}

void NcclCommunicator::attach_to_watchdog() {
  if (!watchdog_) return;
  std::weak_ptr<Handle> weak = handle_;
  const std::string name = name_;
  watchdog_->add_health_probe([weak, name]() -> std::optional<std::string> {
    std::shared_ptr<Handle> handle = weak.lock();
    if (!handle) return std::nullopt;
    std::lock_guard lock(handle->mutex);
    if (handle->comm == nullptr) return std::nullopt;
    ncclResult_t result = ncclSuccess;
    if (ncclCommGetAsyncError(handle->comm, &result) != ncclSuccess) return std::nullopt;
    if (result == ncclSuccess || result == ncclInProgress) return std::nullopt;
    return str_cat("NCCL communicator '", name, "' reported an asynchronous error: ",
                   ncclGetErrorString(result), " (", ncclGetLastError(handle->comm), ")");
  });
  watchdog_->add_abort_hook([weak] {
    if (std::shared_ptr<Handle> handle = weak.lock()) {
      // try_lock: the abort must not wait behind a thread stuck while holding the handle.
      std::unique_lock lock(handle->mutex, std::try_to_lock);
      if (handle->comm != nullptr) ncclCommAbort(std::exchange(handle->comm, nullptr));
    }
  });
}

NcclCommunicator::~NcclCommunicator() {
  std::lock_guard lock(handle_->mutex);
  if (handle_->comm != nullptr) ncclCommDestroy(std::exchange(handle_->comm, nullptr));
}

void NcclCommunicator::abort() noexcept {
  std::lock_guard lock(handle_->mutex);
  if (handle_->comm != nullptr) ncclCommAbort(std::exchange(handle_->comm, nullptr));
}

ncclComm_t NcclCommunicator::comm() const {
  ncclComm_t comm = handle_->comm;
  ALBION_CHECK(comm != nullptr, "operation on the aborted NCCL communicator '", name_, "'");
  return comm;
}

void NcclCommunicator::check_cuda_operand(std::string_view operation, const at::Tensor& tensor) const {
  ALBION_CHECK_AS(UsageError, tensor.defined() && tensor.is_cuda() && tensor.get_device() == device_,
                  "nccl ", operation, ": tensor on ", tensor.defined() ? tensor.device().str() : "nothing",
                  ", expected cuda:", device_, " (the MPI backend moves CPU tensors)");
}

template <typename Issue>
std::shared_ptr<Work> NcclCommunicator::launch(std::string description,
                                               std::initializer_list<at::Tensor> operands, Issue issue) {
  const auto index = static_cast<c10::DeviceIndex>(device_);
  c10::cuda::CUDAGuard guard(index);
  at::cuda::CUDAEvent inputs_ready(cudaEventDisableTiming);
  inputs_ready.record(c10::cuda::getCurrentCUDAStream(index));
  inputs_ready.block(stream_);
  {
    // Temporaries (padding for uneven shards) are allocated on the communication stream.
    c10::cuda::CUDAStreamGuard on_comm_stream(stream_);
    issue(stream_.stream());
  }
  for (const at::Tensor& operand : operands) {
    if (operand.numel() > 0) c10::cuda::CUDACachingAllocator::recordStream(operand.storage().data_ptr(), stream_);
  }
  auto work = std::make_shared<NcclWork>(std::move(description), stream_, device_);
  if (watchdog_) watchdog_->watch(work);
  return work;
}

std::shared_ptr<Work> NcclCommunicator::all_reduce(const at::Tensor& tensor, ReduceOp op) {
  const std::string operation = str_cat("all_reduce(", reduce_op_name(op), ")");
  check_cuda_operand(operation, tensor);
  check_operand(*this, operation, tensor);
  const ncclDataType_t type = nccl_data_type(tensor.scalar_type());
  const ncclRedOp_t reduction = nccl_op(op, tensor.scalar_type(), size_);
  return launch(describe_operation(*this, operation, tensor), {tensor}, [&](cudaStream_t stream) {
    ALBION_NCCL_CHECK(ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                                    type, reduction, comm(), stream), comm());
  });
}

std::shared_ptr<Work> NcclCommunicator::reduce_scatter(const at::Tensor& output, const at::Tensor& input,
                                                       ReduceOp op) {
  const std::string operation = str_cat("reduce_scatter(", reduce_op_name(op), ")");
  check_cuda_operand(operation, input);
  check_cuda_operand(operation, output);
  check_operand(*this, operation, input);
  const std::int64_t numel = input.numel();
  check_operand(*this, operation, output, shard_range(numel, rank_, size_).length);
  const ncclDataType_t type = nccl_data_type(input.scalar_type());
  const ncclRedOp_t reduction = nccl_op(op, input.scalar_type(), size_);
  const std::int64_t chunk = (numel + size_ - 1) / size_;
  return launch(describe_operation(*this, operation, input), {output, input}, [&](cudaStream_t stream) {
    if (chunk * size_ == numel) {
      ALBION_NCCL_CHECK(ncclReduceScatter(input.data_ptr(), output.data_ptr(), static_cast<size_t>(chunk), type,
                                          reduction, comm(), stream), comm());
      return;
    }
    // NCCL needs equal chunks: pad the input to chunk x size, keep the valid part of ours.
    at::Tensor padded = at::zeros({chunk * size_}, input.options());
    padded.narrow(0, 0, numel).copy_(input.reshape({-1}));
    at::Tensor mine = at::empty({chunk}, input.options());
    ALBION_NCCL_CHECK(ncclReduceScatter(padded.data_ptr(), mine.data_ptr(), static_cast<size_t>(chunk), type,
                                        reduction, comm(), stream), comm());
    output.reshape({-1}).copy_(mine.narrow(0, 0, output.numel()));
  });
}

std::shared_ptr<Work> NcclCommunicator::all_gather(const at::Tensor& output, const at::Tensor& input) {
  const std::string operation = "all_gather";
  check_cuda_operand(operation, input);
  check_cuda_operand(operation, output);
  check_operand(*this, operation, output);
  const std::int64_t numel = output.numel();
  check_operand(*this, operation, input, shard_range(numel, rank_, size_).length);
  const ncclDataType_t type = nccl_data_type(output.scalar_type());
  const std::int64_t chunk = (numel + size_ - 1) / size_;
  return launch(describe_operation(*this, operation, output), {output, input}, [&](cudaStream_t stream) {
    if (chunk * size_ == numel) {
      // NCCL allows the input to be the output's own chunk (in-place gather).
      ALBION_NCCL_CHECK(ncclAllGather(input.data_ptr(), output.data_ptr(), static_cast<size_t>(chunk), type,
                                      comm(), stream), comm());
      return;
    }
    at::Tensor mine = at::zeros({chunk}, input.options());
    mine.narrow(0, 0, input.numel()).copy_(input.reshape({-1}));
    at::Tensor gathered = at::empty({chunk * size_}, output.options());
    ALBION_NCCL_CHECK(ncclAllGather(mine.data_ptr(), gathered.data_ptr(), static_cast<size_t>(chunk), type, comm(),
                                    stream), comm());
    output.reshape({-1}).copy_(gathered.narrow(0, 0, numel));
  });
}

std::shared_ptr<Work> NcclCommunicator::broadcast(const at::Tensor& tensor, int root) {
  const std::string operation = str_cat("broadcast(root ", root, ")");
  check_cuda_operand(operation, tensor);
  check_operand(*this, operation, tensor);
  check_root(*this, "broadcast", root);
  const ncclDataType_t type = nccl_data_type(tensor.scalar_type());
  return launch(describe_operation(*this, operation, tensor), {tensor}, [&](cudaStream_t stream) {
    ALBION_NCCL_CHECK(ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                                    type, root, comm(), stream), comm());
  });
}

std::shared_ptr<Work> NcclCommunicator::reduce(const at::Tensor& tensor, ReduceOp op, int root) {
  const std::string operation = str_cat("reduce(", reduce_op_name(op), ", root ", root, ")");
  check_cuda_operand(operation, tensor);
  check_operand(*this, operation, tensor);
  check_root(*this, "reduce", root);
  const ncclDataType_t type = nccl_data_type(tensor.scalar_type());
  const ncclRedOp_t reduction = nccl_op(op, tensor.scalar_type(), size_);
  return launch(describe_operation(*this, operation, tensor), {tensor}, [&](cudaStream_t stream) {
    // In place; NCCL writes the receive buffer on the root only.
    ALBION_NCCL_CHECK(ncclReduce(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()), type,
                                 reduction, root, comm(), stream), comm());
  });
}

std::shared_ptr<Work> NcclCommunicator::send(const at::Tensor& tensor, int peer) {
  const std::string operation = str_cat("send(to ", peer, ")");
  check_cuda_operand(operation, tensor);
  check_operand(*this, operation, tensor);
  check_peer(*this, operation, peer);
  const ncclDataType_t type = nccl_data_type(tensor.scalar_type());
  return launch(describe_operation(*this, operation, tensor), {tensor}, [&](cudaStream_t stream) {
    ALBION_NCCL_CHECK(ncclSend(tensor.data_ptr(), static_cast<size_t>(tensor.numel()), type, peer, comm(), stream),
                      comm());
  });
}

std::shared_ptr<Work> NcclCommunicator::recv(const at::Tensor& tensor, int peer) {
  const std::string operation = str_cat("recv(from ", peer, ")");
  check_cuda_operand(operation, tensor);
  check_operand(*this, operation, tensor);
  check_peer(*this, operation, peer);
  const ncclDataType_t type = nccl_data_type(tensor.scalar_type());
  return launch(describe_operation(*this, operation, tensor), {tensor}, [&](cudaStream_t stream) {
    ALBION_NCCL_CHECK(ncclRecv(tensor.data_ptr(), static_cast<size_t>(tensor.numel()), type, peer, comm(), stream),
                      comm());
  });
}

void NcclCommunicator::barrier() {
  const auto index = static_cast<c10::DeviceIndex>(device_);
  at::Tensor token = at::zeros({1}, at::TensorOptions().dtype(at::kInt).device(at::kCUDA, index));
  all_reduce(token, ReduceOp::kSum)->wait();
  c10::cuda::getCurrentCUDAStream(index).synchronize();
}

std::unique_ptr<Communicator> NcclCommunicator::split(int color, int key, const std::string& name) {
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device_));
  auto child = std::make_shared<Handle>();
  ALBION_NCCL_CHECK(ncclCommSplit(comm(), color, key, &child->comm, nullptr), comm());
  return std::unique_ptr<Communicator>(new NcclCommunicator(std::move(child), device_, name, watchdog_));
}

}  // namespace albion::collectives
