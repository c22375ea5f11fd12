// File: collectives/mpi_communicator.h
// The Communicator for CPU tensors, over MPI. Operations run on one communication thread per
// communicator, in issue order, so a caller (DDP's autograd hooks) starts an all-reduce and goes
// on computing while it travels: Note [One communication thread].
//
// The communicator works on its own duplicate of the MPI_Comm it is given, so its operations never
// interleave with anyone else's on that communicator. Needs MPI_THREAD_MULTIPLE (the MPI session
// asks for it). Destroy it before MPI_Finalize.
#pragma once

#include <mpi.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collectives/communicator.h"
#include "collectives/watchdog.h"

namespace albion::collectives {

class MpiCommunicator final : public Communicator {
 public:
  // Collective over `comm`. `watchdog` (may be null) watches every operation.
  MpiCommunicator(MPI_Comm comm, std::string name, std::shared_ptr<Watchdog> watchdog);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const std::string& name() const override { return name_; }
  const char* backend() const override { return "mpi"; }

  std::shared_ptr<Work> all_reduce(const at::Tensor& tensor, ReduceOp op) override;
  std::shared_ptr<Work> reduce_scatter(const at::Tensor& output, const at::Tensor& input, ReduceOp op) override;
  std::shared_ptr<Work> all_gather(const at::Tensor& output, const at::Tensor& input) override;
  std::shared_ptr<Work> broadcast(const at::Tensor& tensor, int root) override;
  std::shared_ptr<Work> reduce(const at::Tensor& tensor, ReduceOp op, int root) override;
  std::shared_ptr<Work> send(const at::Tensor& tensor, int peer) override;
  std::shared_ptr<Work> recv(const at::Tensor& tensor, int peer) override;
  void barrier() override;
  std::unique_ptr<Communicator> split(int color, int key, const std::string& name) override;

  // The duplicated communicator, for code that needs raw MPI (benchmarks). Do not use it while
  // operations are in flight.
  MPI_Comm mpi_comm() const { return comm_; }

 private:
  class MpiWork;
  // Runs on the communication thread. Blocking operations return nothing when done; point-to-
  // point ones return their request, which the thread completes later.
  using Action = std::function<std::optional<MPI_Request>()>;
  struct Queued {
    Action action;
    std::shared_ptr<MpiWork> work;
    bool blocking = true;  // a collective, run to its end (point-to-point: false)
  };
  struct InFlight {
    MPI_Request request;
    std::shared_ptr<MpiWork> work;
  };

  std::shared_ptr<Work> point_to_point(const at::Tensor& tensor, int peer, bool sending);
  std::shared_ptr<Work> enqueue(std::string description, Action action, std::vector<at::Tensor> keep_alive,
                                bool blocking = true);
  void run();
  void execute(Queued& operation);  // with executor_ held
  // Runs `work` on the calling thread if it is the next operation and nothing else is running.
  void try_run_inline(const MpiWork* work);
  void progress_requests();

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::string name_;
  int rank_ = 0;
  int size_ = 1;
  std::shared_ptr<Watchdog> watchdog_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Queued> queue_;
  std::mutex executor_;              // held by whichever thread runs an operation
  std::vector<InFlight> in_flight_;  // with executor_ held
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace albion::collectives
