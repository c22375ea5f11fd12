// File: collectives/watchdog.cpp
#include "collectives/watchdog.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>

#include "runtime/base/check.h"
#include "runtime/base/log.h"

namespace albion::collectives {
namespace {

// Poll often enough that a short timeout (tests use 2 s) fires promptly, rarely enough to cost
// nothing next to a training step.
std::chrono::milliseconds poll_interval(std::chrono::milliseconds timeout) {
  return std::clamp(timeout / 10, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}

}  // namespace

Watchdog::Watchdog(std::chrono::milliseconds timeout, int world_rank, AbortAction on_abort)
    : timeout_(timeout), world_rank_(world_rank), on_abort_(std::move(on_abort)) {
  ALBION_CHECK_AS(UsageError, timeout.count() > 0, "collective timeout must be positive");
  thread_ = std::thread([this] { poll_loop(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Watchdog::watch(std::shared_ptr<Work> work) {
  std::lock_guard lock(mutex_);
  watched_.push_back(std::move(work));
}

void Watchdog::add_health_probe(HealthProbe probe) {
  std::lock_guard lock(mutex_);
  probes_.push_back(std::move(probe));
}

void Watchdog::add_abort_hook(std::function<void()> hook) {
  std::lock_guard lock(mutex_);
  abort_hooks_.push_back(std::move(hook));
}

bool Watchdog::fired() const {
  std::lock_guard lock(mutex_);
  return fired_;
}

void Watchdog::poll_loop() {
  const double timeout_seconds = std::chrono::duration<double>(timeout_).count();
  std::unique_lock lock(mutex_);
  while (!stopping_ && !fired_) {
    wake_.wait_for(lock, poll_interval(timeout_));
    if (stopping_) break;
    std::optional<std::string> reason;
    std::erase_if(watched_, [&](const std::shared_ptr<Work>& work) {
      if (work->completed()) return true;
      if (!reason && work->running_seconds() > timeout_seconds) {
        reason = str_cat("rank ", world_rank_, ": ", work->description(), " did not complete within ",
                         timeout_seconds, " s (parallel.timeout_s); a peer has probably died or "
                         "stalled; aborting all ranks");
      }
      return false;
    });
    for (const HealthProbe& probe : probes_) {
      if (reason) break;
      if (std::optional<std::string> failure = probe()) {
        reason = str_cat("rank ", world_rank_, ": ", *failure, "; aborting all ranks");
      }
    }
    if (reason) {
      fired_ = true;
      lock.unlock();
      fire(*reason);
      return;
    }
  }
}

void Watchdog::fire(const std::string& reason) {
  if (on_abort_) {
    on_abort_(reason);
    return;
  }
  log::error(reason);
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard lock(mutex_);
    hooks = abort_hooks_;
  }
  for (const auto& hook : hooks) hook();
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, 1);
  _exit(1);
}

}  // namespace albion::collectives
