// File: collectives/watchdog.h
// Turns a hang into an error. A job of a thousand ranks where one died or stalled would otherwise
// sit in its next collective until the allocation expires. The watchdog thread polls every
// operation it was given; when one has run longer than the timeout, or a health probe (NCCL's
// asynchronous error) reports a failure, it logs one line naming this rank, the operation and the
// timeout, and calls the abort action: by default abort_communicators() (NCCL) then
// MPI_Abort(MPI_COMM_WORLD), so every rank exits non-zero.
//
//   auto watchdog = std::make_shared<Watchdog>(600s, world_rank);
//   watchdog->watch(comm.all_reduce(grads, ReduceOp::kAvg));
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collectives/communicator.h"

namespace albion::collectives {

class Watchdog {
 public:
  using AbortAction = std::function<void(const std::string& reason)>;
  // Returns a description of a failure, or nothing while healthy.
  using HealthProbe = std::function<std::optional<std::string>()>;

  // `on_abort` defaults to: log the reason as an error, run the registered abort hooks, then
  // MPI_Abort(MPI_COMM_WORLD, 1) (or _exit(1) without MPI). It is called at most once.
  Watchdog(std::chrono::milliseconds timeout, int world_rank, AbortAction on_abort = {});
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  std::chrono::milliseconds timeout() const { return timeout_; }
  // Watch one operation until it completes.
  void watch(std::shared_ptr<Work> work);
  // Checked on every poll, for the watchdog's lifetime.
  void add_health_probe(HealthProbe probe);
  // Run before the default abort action (NCCL communicators abort here, so a kernel stuck on a
  // dead peer releases the GPU). Must not block.
  void add_abort_hook(std::function<void()> hook);
  // True once the abort action ran (tests with a custom action).
  bool fired() const;

 private:
  void poll_loop();
  void fire(const std::string& reason);

  const std::chrono::milliseconds timeout_;
  const int world_rank_;
  AbortAction on_abort_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<std::shared_ptr<Work>> watched_;
  std::vector<HealthProbe> probes_;
  std::vector<std::function<void()>> abort_hooks_;
  bool stopping_ = false;
  bool fired_ = false;
  std::thread thread_;
};

}  // namespace albion::collectives
