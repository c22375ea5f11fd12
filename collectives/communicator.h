// File: collectives/communicator.h
// One interface for moving tensors between ranks, with two real backends:
//   MpiCommunicator  (collectives/mpi_communicator.h)  CPU tensors; also the bootstrap transport;
//   NcclCommunicator (collectives/nccl_communicator.h) CUDA tensors, stream-ordered.
//
//   std::shared_ptr<Work> work = comm.all_reduce(grads, ReduceOp::kAvg);   // starts, returns
//   ... more backward ...
//   work->wait();                                                          // result usable
//
// Every operation is collective over the communicator (send/recv over the pair): all ranks issue
// the same operations in the same order. Operations on one communicator run in issue order.
// Sizes may be anything, including zero and sizes the world size does not divide: reduce_scatter
// and all_gather split a flat tensor of N elements by shard_range() below.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>

namespace albion::collectives {

enum class ReduceOp { kSum, kAvg, kMax };
const char* reduce_op_name(ReduceOp op);

// The part of a flat tensor of `numel` elements that `rank` of `size` owns after reduce_scatter
// (and contributes to all_gather): chunks of ceil(numel / size), the last ones shorter or empty.
// The same layout on both backends, so ZeRO shards mean the same thing everywhere.
struct ShardRange {
  std::int64_t offset = 0;
  std::int64_t length = 0;
};
ShardRange shard_range(std::int64_t numel, int rank, int size);

// A started operation. Thread-safe: the watchdog polls completed() from its own thread.
class Work {
 public:
  virtual ~Work() = default;
  // CPU: blocks until the operation finished and its output is in memory; rethrows its error.
  // CUDA: makes the caller's current stream wait for it (the host does not block), as a kernel
  // launched after it on that stream would.
  virtual void wait() = 0;
  // True once the operation finished (on the device, for CUDA).
  virtual bool completed() = 0;
  // Seconds since the operation started executing, or a negative value before it started.
  virtual double running_seconds() = 0;
  // "all_reduce(avg) of 6553600 x float on 'data' [mpi]", for errors and the watchdog.
  virtual const std::string& description() const = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const std::string& name() const = 0;  // "world", "data", "tensor", ...
  virtual const char* backend() const = 0;      // "mpi" or "nccl"

  // In place.
  virtual std::shared_ptr<Work> all_reduce(const at::Tensor& tensor, ReduceOp op) = 0;
  // `input`: N contiguous elements on every rank; `output`: shard_range(N, rank, size).length.
  virtual std::shared_ptr<Work> reduce_scatter(const at::Tensor& output, const at::Tensor& input,
                                               ReduceOp op) = 0;
  // `input`: this rank's shard_range(N, rank, size).length elements; `output`: N elements. The
  // input may be the output's own shard (in-place gather, as ZeRO does with its flat parameters).
  virtual std::shared_ptr<Work> all_gather(const at::Tensor& output, const at::Tensor& input) = 0;
  virtual std::shared_ptr<Work> broadcast(const at::Tensor& tensor, int root) = 0;
  // In place on `root`: the reduction over the group. The other ranks' tensors are left as they were.
  virtual std::shared_ptr<Work> reduce(const at::Tensor& tensor, ReduceOp op, int root) = 0;
  virtual std::shared_ptr<Work> send(const at::Tensor& tensor, int peer) = 0;
  virtual std::shared_ptr<Work> recv(const at::Tensor& tensor, int peer) = 0;
  // Returns when every rank has entered it (and, for NCCL, earlier work on this rank finished).
  virtual void barrier() = 0;

  // Collective: ranks passing the same `color` form a new communicator, ordered by `key`.
  virtual std::unique_ptr<Communicator> split(int color, int key, const std::string& name) = 0;
};

}  // namespace albion::collectives
