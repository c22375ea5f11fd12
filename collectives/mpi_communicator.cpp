// File: collectives/mpi_communicator.cpp
#include "collectives/mpi_communicator.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <exception>

#include "collectives/mpi_check.h"
#include "collectives/mpi_types.h"
#include "collectives/operation_checks.h"
#include "runtime/base/check.h"

namespace albion::collectives {

// Note [One communication thread]
// OpenMPI makes progress on a non-blocking collective only while some thread is inside MPI, and
// its non-blocking collectives use slower algorithms than the tuned blocking ones. So each
// communicator owns one thread that runs the blocking call (MPI_Allreduce, the same call and
// algorithm a user would make directly) while the caller computes. Operations of one communicator
// run in the order they were issued, which every rank shares, so collectives always match.
// Point-to-point operations are started with MPI_Isend/MPI_Irecv and completed by the thread
// between operations, so a ring of sends and receives cannot deadlock.
//
// A caller that waits for a collective the thread has not started yet, at the head of the queue,
// runs it itself (Work::wait, try_run_inline): a synchronous all_reduce()->wait() then costs what
// a direct MPI call costs, with no hand-off between threads. Whoever runs an operation holds
// executor_ from taking it off the queue to its end, so issue order still holds.

class MpiCommunicator::MpiWork final : public Work {
 public:
  MpiWork(MpiCommunicator* owner, std::string description, std::vector<at::Tensor> keep_alive)
      : owner_(owner), description_(std::move(description)), keep_alive_(std::move(keep_alive)) {}

  void wait() override {
    // Unfinished work means its communicator is alive (its destructor drains the queue).
    if (!completed()) owner_->try_run_inline(this);
    std::unique_lock lock(mutex_);
    done_cv_.wait(lock, [this] { return done_; });
    if (error_) std::rethrow_exception(error_);
  }
  bool completed() override {
    std::lock_guard lock(mutex_);
    return done_;
  }
  double running_seconds() override {
    const std::int64_t started = started_ns_.load();
    if (started < 0) return -1;
    return static_cast<double>(now_ns() - started) * 1e-9;
  }
  const std::string& description() const override { return description_; }

  void mark_started() { started_ns_.store(now_ns()); }
  void finish(std::exception_ptr error = nullptr) {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
      error_ = error;
      keep_alive_.clear();
    }
    done_cv_.notify_all();
  }

 private:
  static std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  MpiCommunicator* const owner_;
  const std::string description_;
  std::vector<at::Tensor> keep_alive_;  // the operands outlive the operation
  std::atomic<std::int64_t> started_ns_{-1};
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::exception_ptr error_;
};

namespace {

int count_as_int(std::int64_t count, std::string_view operation) {
  ALBION_CHECK_AS(UsageError, count <= INT_MAX, "mpi ", operation, ": ", count,
                  " elements per rank exceed MPI's int counts; use the NCCL backend or more ranks");
  return static_cast<int>(count);
}

// Calls `call(pointer, count)` over pieces of at most INT_MAX elements (MPI counts are ints).
template <typename Call>
void in_int_sized_pieces(const at::Tensor& tensor, Call call) {
  char* base = static_cast<char*>(tensor.data_ptr());
  const std::int64_t item = tensor.element_size();
  const std::int64_t numel = tensor.numel();
  if (numel == 0) {
    call(base, 0);
    return;
  }
  for (std::int64_t offset = 0; offset < numel; offset += INT_MAX) {
    call(base + offset * item, static_cast<int>(std::min<std::int64_t>(INT_MAX, numel - offset)));
  }
}

void check_mpi_cpu(std::string_view operation, const at::Tensor& tensor) {
  ALBION_CHECK_AS(UsageError, !tensor.defined() || tensor.is_cpu(), "mpi ", operation,
                  ": tensor on ", tensor.device(), "; the MPI backend moves CPU tensors (use nccl for CUDA)");
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name, std::shared_ptr<Watchdog> watchdog)
    : name_(std::move(name)), watchdog_(std::move(watchdog)) {
  int level = 0;
  ALBION_MPI_CHECK(MPI_Query_thread(&level));
  ALBION_CHECK(level == MPI_THREAD_MULTIPLE,
               "the MPI library gave thread level ", level, ", but Albion's communication threads need "
               "MPI_THREAD_MULTIPLE; use an MPI built with thread support");
  ALBION_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  ALBION_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  ALBION_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  ALBION_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  thread_ = std::thread([this] { run(); });
}

MpiCommunicator::~MpiCommunicator() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

std::shared_ptr<Work> MpiCommunicator::enqueue(std::string description, Action action,
                                               std::vector<at::Tensor> keep_alive, bool blocking) {
  auto work = std::make_shared<MpiWork>(this, std::move(description), std::move(keep_alive));
  {
    std::lock_guard lock(mutex_);
    ALBION_CHECK(!stopping_, "operation on a communicator being destroyed");
    queue_.push_back({std::move(action), work, blocking});
  }
  wake_.notify_one();
  if (watchdog_) watchdog_->watch(work);
  return work;
}

void MpiCommunicator::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      const auto ready = [this] { return stopping_ || !queue_.empty(); };
      // With receives in flight, wake often to complete them; otherwise sleep until work comes.
      if (in_flight_.empty()) wake_.wait(lock, ready);
      else wake_.wait_for(lock, std::chrono::microseconds(50), ready);
      if (queue_.empty() && stopping_ && in_flight_.empty()) return;
    }
    std::lock_guard executing(executor_);
    std::optional<Queued> next;
    {
      std::lock_guard lock(mutex_);
      if (!queue_.empty()) {
        next = std::move(queue_.front());
        queue_.pop_front();
      }
    }
    if (next) execute(*next);
    progress_requests();
  }
}

void MpiCommunicator::execute(Queued& operation) {
  operation.work->mark_started();
  try {
    if (std::optional<MPI_Request> request = operation.action()) {
      in_flight_.push_back({*request, operation.work});
    } else {
      operation.work->finish();
    }
  } catch (...) {
    operation.work->finish(std::current_exception());
  }
}

void MpiCommunicator::try_run_inline(const MpiWork* work) {
  std::unique_lock executing(executor_, std::try_to_lock);
  if (!executing) return;
  std::optional<Queued> head;
  {
    std::lock_guard lock(mutex_);
    if (queue_.empty() || queue_.front().work.get() != work || !queue_.front().blocking) return;
    head = std::move(queue_.front());
    queue_.pop_front();
  }
  execute(*head);
}

void MpiCommunicator::progress_requests() {
  std::erase_if(in_flight_, [](InFlight& pending) {
    int done = 0;
    const int status = MPI_Test(&pending.request, &done, MPI_STATUS_IGNORE);
    if (status != MPI_SUCCESS) {
      try {
        throw_mpi_error(status, "MPI_Test", __FILE__, __LINE__);
      } catch (...) {
        pending.work->finish(std::current_exception());
      }
      return true;
    }
    if (done) pending.work->finish();
    return done != 0;
  });
}

std::shared_ptr<Work> MpiCommunicator::all_reduce(const at::Tensor& tensor, ReduceOp op) {
  const std::string operation = str_cat("all_reduce(", reduce_op_name(op), ")");
  check_mpi_cpu(operation, tensor);
  check_operand(*this, operation, tensor);
  const MpiReduction reduction = mpi_reduction(tensor.scalar_type(), op);
  return enqueue(describe_operation(*this, operation, tensor), [this, tensor, reduction] {
    in_int_sized_pieces(tensor, [&](void* data, int count) {
      ALBION_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, count, reduction.datatype, reduction.op, comm_));
    });
    if (reduction.divide_by_size && size_ > 1) tensor.div_(size_);
    return std::optional<MPI_Request>();
  }, {tensor});
}

std::shared_ptr<Work> MpiCommunicator::reduce_scatter(const at::Tensor& output, const at::Tensor& input,
                                                      ReduceOp op) {
  const std::string operation = str_cat("reduce_scatter(", reduce_op_name(op), ")");
  check_mpi_cpu(operation, input);
  check_mpi_cpu(operation, output);
  check_operand(*this, operation, input);
  const std::int64_t numel = input.numel();
  check_operand(*this, operation, output, shard_range(numel, rank_, size_).length);
  ALBION_CHECK_AS(UsageError, output.scalar_type() == input.scalar_type(), "mpi ", operation,
                  ": output is ", output.scalar_type(), " but input is ", input.scalar_type());
  const MpiReduction reduction = mpi_reduction(input.scalar_type(), op);
  std::vector<int> counts(static_cast<std::size_t>(size_));
  for (int r = 0; r < size_; ++r) counts[r] = count_as_int(shard_range(numel, r, size_).length, operation);
  return enqueue(describe_operation(*this, operation, input),
                 [this, output, input, reduction, counts = std::move(counts)] {
    ALBION_MPI_CHECK(MPI_Reduce_scatter(input.data_ptr(), output.data_ptr(), counts.data(),
                                        reduction.datatype, reduction.op, comm_));
    if (reduction.divide_by_size && size_ > 1) output.div_(size_);
    return std::optional<MPI_Request>();
  }, {output, input});
}

std::shared_ptr<Work> MpiCommunicator::all_gather(const at::Tensor& output, const at::Tensor& input) {
  const std::string operation = "all_gather";
  check_mpi_cpu(operation, input);
  check_mpi_cpu(operation, output);
  check_operand(*this, operation, output);
  const std::int64_t numel = output.numel();
  const ShardRange mine = shard_range(numel, rank_, size_);
  check_operand(*this, operation, input, mine.length);
  ALBION_CHECK_AS(UsageError, output.scalar_type() == input.scalar_type(), "mpi ", operation,
                  ": output is ", output.scalar_type(), " but input is ", input.scalar_type());
  std::vector<int> counts(static_cast<std::size_t>(size_));
  std::vector<int> displacements(static_cast<std::size_t>(size_));
  for (int r = 0; r < size_; ++r) {
    const ShardRange range = shard_range(numel, r, size_);
    counts[r] = count_as_int(range.length, operation);
    displacements[r] = count_as_int(range.offset, operation);
  }
  // The input is this rank's own slot of the output: gather in place.
  const bool in_place = input.numel() == 0 ||
                        input.data_ptr() == static_cast<char*>(output.data_ptr()) + mine.offset * output.element_size();
  const MPI_Datatype datatype = mpi_datatype(output.scalar_type());
  return enqueue(describe_operation(*this, operation, output),
                 [this, output, input, in_place, datatype, counts = std::move(counts),
                  displacements = std::move(displacements)] {
    ALBION_MPI_CHECK(MPI_Allgatherv(in_place ? MPI_IN_PLACE : input.data_ptr(), counts[rank_], datatype,
                                    output.data_ptr(), counts.data(), displacements.data(), datatype, comm_));
    return std::optional<MPI_Request>();
  }, {output, input});
}

std::shared_ptr<Work> MpiCommunicator::broadcast(const at::Tensor& tensor, int root) {
  const std::string operation = str_cat("broadcast(root ", root, ")");
  check_mpi_cpu(operation, tensor);
  check_operand(*this, operation, tensor);
  check_root(*this, "broadcast", root);
  const MPI_Datatype datatype = mpi_datatype(tensor.scalar_type());
  return enqueue(describe_operation(*this, operation, tensor), [this, tensor, root, datatype] {
    in_int_sized_pieces(tensor, [&](void* data, int count) {
      ALBION_MPI_CHECK(MPI_Bcast(data, count, datatype, root, comm_));
    });
    return std::optional<MPI_Request>();
  }, {tensor});
}

std::shared_ptr<Work> MpiCommunicator::reduce(const at::Tensor& tensor, ReduceOp op, int root) {
  const std::string operation = str_cat("reduce(", reduce_op_name(op), ", root ", root, ")");
  check_mpi_cpu(operation, tensor);
  check_operand(*this, operation, tensor);
  check_root(*this, "reduce", root);
  const MpiReduction reduction = mpi_reduction(tensor.scalar_type(), op);
  return enqueue(describe_operation(*this, operation, tensor), [this, tensor, reduction, root] {
    const bool is_root = rank_ == root;
    in_int_sized_pieces(tensor, [&](void* data, int count) {
      ALBION_MPI_CHECK(MPI_Reduce(is_root ? MPI_IN_PLACE : data, is_root ? data : nullptr, count,
                                  reduction.datatype, reduction.op, root, comm_));
    });
    if (is_root && reduction.divide_by_size && size_ > 1) tensor.div_(size_);
    return std::optional<MPI_Request>();
  }, {tensor});
}

std::shared_ptr<Work> MpiCommunicator::send(const at::Tensor& tensor, int peer) {
  return point_to_point(tensor, peer, /*sending=*/true);
}

std::shared_ptr<Work> MpiCommunicator::recv(const at::Tensor& tensor, int peer) {
  return point_to_point(tensor, peer, /*sending=*/false);
}

std::shared_ptr<Work> MpiCommunicator::point_to_point(const at::Tensor& tensor, int peer, bool sending) {
  const std::string operation = sending ? str_cat("send(to ", peer, ")") : str_cat("recv(from ", peer, ")");
  check_mpi_cpu(operation, tensor);
  check_operand(*this, operation, tensor);
  check_peer(*this, operation, peer);
  const int count = count_as_int(tensor.numel(), operation);
  const MPI_Datatype datatype = mpi_datatype(tensor.scalar_type());
  return enqueue(describe_operation(*this, operation, tensor), [this, tensor, peer, count, datatype, sending] {
    MPI_Request request = MPI_REQUEST_NULL;
    if (sending) ALBION_MPI_CHECK(MPI_Isend(tensor.data_ptr(), count, datatype, peer, 0, comm_, &request));
    else ALBION_MPI_CHECK(MPI_Irecv(tensor.data_ptr(), count, datatype, peer, 0, comm_, &request));
    return std::optional<MPI_Request>(request);
  }, {tensor}, /*blocking=*/false);
}

void MpiCommunicator::barrier() {
  enqueue(str_cat("barrier on '", name_, "' [mpi, rank ", rank_, " of ", size_, "]"), [this] {
    ALBION_MPI_CHECK(MPI_Barrier(comm_));
    return std::optional<MPI_Request>();
  }, {})->wait();
}

std::unique_ptr<Communicator> MpiCommunicator::split(int color, int key, const std::string& name) {
  // Split on the communication thread: MPI forbids two threads in collectives on one communicator.
  MPI_Comm part = MPI_COMM_NULL;
  enqueue(str_cat("split into '", name, "' on '", name_, "' [mpi]"), [this, color, key, &part] {
    ALBION_MPI_CHECK(MPI_Comm_split(comm_, color, key, &part));
    return std::optional<MPI_Request>();
  }, {})->wait();
  auto child = std::make_unique<MpiCommunicator>(part, name, watchdog_);
  MPI_Comm_free(&part);  // the child keeps its own duplicate
  return child;
}

}  // namespace albion::collectives
