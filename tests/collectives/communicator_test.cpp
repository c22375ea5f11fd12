// File: tests/collectives/communicator_test.cpp
// Every operation x dtype x size against a single-process reference (reduce: on the root, and the
// other ranks untouched). Under mpirun -np 2 and 4 the
// MPI backend runs on the world; the *Cuda suite runs the same checks through NCCL (one process,
// label gpu). Inputs are small integers, so every sum, average (over 1, 2 or 4 ranks) and max is
// exact in every dtype, bf16 included, and results are compared exactly.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <memory>
#include <vector>

#include "collectives/mpi_communicator.h"
#include "collectives/nccl_communicator.h"
#include "runtime/base/check.h"
#include "runtime/base/error.h"
#include "tests/support/cuda_available.h"

namespace albion::collectives {
namespace {

const std::vector<std::int64_t> kSizes = {0, 1, 7, 1000, 4099};

// Rank r's input: integers in [-15, 15], different per rank and element.
at::Tensor input_of(int rank, std::int64_t numel, at::ScalarType dtype, const at::Device& device) {
  at::Tensor i = at::arange(numel, at::kLong);
  return ((i * 7 + rank * 13) % 31 - 15).to(dtype).to(device);
}

at::Tensor reference(ReduceOp op, int size, std::int64_t numel) {
  at::Tensor result = input_of(0, numel, at::kDouble, at::kCPU);
  for (int r = 1; r < size; ++r) {
    at::Tensor other = input_of(r, numel, at::kDouble, at::kCPU);
    result = op == ReduceOp::kMax ? at::maximum(result, other) : result + other;
  }
  return op == ReduceOp::kAvg ? result / size : result;
}

// Exactly equal; a failure names the first element that differs and how many do.
void expect_equal(const at::Tensor& actual, const at::Tensor& expected, const std::string& what) {
  ASSERT_EQ(actual.numel(), expected.numel()) << what;
  const at::Tensor got = actual.cpu().to(at::kDouble).reshape({-1});
  const at::Tensor want = expected.to(at::kDouble).reshape({-1});
  const at::Tensor differs = got.ne(want);
  if (!differs.any().item<bool>()) return;
  const std::int64_t first = differs.nonzero()[0][0].item<std::int64_t>();
  ADD_FAILURE() << what << ": " << differs.sum().item<std::int64_t>() << " elements differ; the first, [" << first
                << "], is " << got[first].item<double>() << " instead of " << want[first].item<double>();
}

const std::vector<at::ScalarType> kDtypes = {at::kFloat, at::kDouble, at::kBFloat16, at::kHalf, at::kInt, at::kLong};

void check_all_reduce(Communicator& comm, const at::Device& device) {
  for (at::ScalarType dtype : kDtypes) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
      for (std::int64_t n : kSizes) {
        const std::string what = str_cat("all_reduce ", reduce_op_name(op), " ", dtype, " n=", n);
        at::Tensor tensor = input_of(comm.rank(), n, dtype, device);
        if (op == ReduceOp::kAvg && !at::isFloatingType(dtype)) {
          EXPECT_THROW(comm.all_reduce(tensor, op), UsageError) << what;
          continue;
        }
        comm.all_reduce(tensor, op)->wait();
        expect_equal(tensor, reference(op, comm.size(), n), what);
      }
    }
  }
}

void check_reduce_scatter(Communicator& comm, const at::Device& device) {
  for (at::ScalarType dtype : kDtypes) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
      if (op == ReduceOp::kAvg && !at::isFloatingType(dtype)) continue;
      for (std::int64_t n : kSizes) {
        const std::string what = str_cat("reduce_scatter ", reduce_op_name(op), " ", dtype, " n=", n);
        const ShardRange mine = shard_range(n, comm.rank(), comm.size());
        at::Tensor input = input_of(comm.rank(), n, dtype, device);
        // Poisoned output: every element must be written.
        at::Tensor output = at::full({mine.length}, 99, at::TensorOptions().dtype(dtype).device(device));
        comm.reduce_scatter(output, input, op)->wait();
        expect_equal(output, reference(op, comm.size(), n).narrow(0, mine.offset, mine.length), what);
      }
    }
  }
}

void check_all_gather(Communicator& comm, const at::Device& device) {
  for (at::ScalarType dtype : kDtypes) {
    for (std::int64_t n : kSizes) {
      const std::string what = str_cat("all_gather ", dtype, " n=", n);
      const ShardRange mine = shard_range(n, comm.rank(), comm.size());
      at::Tensor global = input_of(7, n, dtype, device);
      at::Tensor output = at::full({n}, 99, at::TensorOptions().dtype(dtype).device(device));
      comm.all_gather(output, global.narrow(0, mine.offset, mine.length).clone())->wait();
      expect_equal(output, global.cpu(), what);
      // In place: the input is the output's own shard.
      at::Tensor in_place = at::full({n}, 99, at::TensorOptions().dtype(dtype).device(device));
      in_place.narrow(0, mine.offset, mine.length).copy_(global.narrow(0, mine.offset, mine.length));
      comm.all_gather(in_place, in_place.narrow(0, mine.offset, mine.length))->wait();
      expect_equal(in_place, global.cpu(), what + " in place");
    }
  }
}

void check_broadcast_and_point_to_point(Communicator& comm, const at::Device& device) {
  for (at::ScalarType dtype : kDtypes) {
    for (std::int64_t n : kSizes) {
      for (int root : {0, comm.size() - 1}) {
        at::Tensor tensor = input_of(comm.rank(), n, dtype, device);
        comm.broadcast(tensor, root)->wait();
        expect_equal(tensor, input_of(root, n, dtype, at::kCPU), str_cat("broadcast root ", root, " ", dtype, " n=", n));
      }
      if (comm.size() == 1) continue;
      // A ring: everyone sends right and receives from the left, both in flight at once.
      const int right = (comm.rank() + 1) % comm.size();
      const int left = (comm.rank() + comm.size() - 1) % comm.size();
      at::Tensor outgoing = input_of(comm.rank(), n, dtype, device);
      at::Tensor incoming = at::full({n}, 99, at::TensorOptions().dtype(dtype).device(device));
      std::shared_ptr<Work> sent = comm.send(outgoing, right);
      std::shared_ptr<Work> received = comm.recv(incoming, left);
      sent->wait();
      received->wait();
      expect_equal(incoming, input_of(left, n, dtype, at::kCPU), str_cat("ring send/recv ", dtype, " n=", n));
    }
  }
}

void check_reduce(Communicator& comm, const at::Device& device) {
  for (at::ScalarType dtype : kDtypes) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
      if (op == ReduceOp::kAvg && !at::isFloatingType(dtype)) continue;
      for (std::int64_t n : kSizes) {
        for (int root : {0, comm.size() - 1}) {
          const std::string what = str_cat("reduce ", reduce_op_name(op), " root ", root, " ", dtype, " n=", n);
          at::Tensor tensor = input_of(comm.rank(), n, dtype, device);
          comm.reduce(tensor, op, root)->wait();
          // The root holds the reduction; every other rank still holds its own input.
          expect_equal(tensor, comm.rank() == root ? reference(op, comm.size(), n)
                                                   : input_of(comm.rank(), n, at::kDouble, at::kCPU), what);
        }
      }
    }
  }
}

// Many operations in flight at once, waited for in reverse: issue order is what matters.
void check_async_and_split(Communicator& comm, const at::Device& device) {
  std::vector<at::Tensor> tensors;
  std::vector<std::shared_ptr<Work>> works;
  for (int i = 0; i < 8; ++i) {
    tensors.push_back(input_of(comm.rank() + i, 1000 + i, at::kFloat, device));
    works.push_back(comm.all_reduce(tensors.back(), ReduceOp::kSum));
  }
  for (int i = 7; i >= 0; --i) works[i]->wait();
  for (int i = 0; i < 8; ++i) {
    at::Tensor expected = at::zeros({1000 + i}, at::kDouble);
    for (int r = 0; r < comm.size(); ++r) expected += input_of(r + i, 1000 + i, at::kDouble, at::kCPU);
    expect_equal(tensors[i], expected, str_cat("async all_reduce ", i));
    EXPECT_TRUE(works[i]->completed());
  }
  comm.barrier();

  // Even and odd ranks form two groups, ordered by rank.
  std::unique_ptr<Communicator> half = comm.split(comm.rank() % 2, comm.rank(), "half");
  EXPECT_EQ(half->size(), (comm.size() + 1 - comm.rank() % 2) / 2);
  EXPECT_EQ(half->rank(), comm.rank() / 2);
  at::Tensor rank_tensor = at::full({3}, comm.rank(), at::TensorOptions().dtype(at::kLong).device(device));
  half->all_reduce(rank_tensor, ReduceOp::kSum)->wait();
  std::int64_t expected = 0;
  for (int r = comm.rank() % 2; r < comm.size(); r += 2) expected += r;
  EXPECT_EQ(rank_tensor[0].item<std::int64_t>(), expected);
}

void check_bad_arguments(Communicator& comm, const at::Device& device) {
  const at::TensorOptions options = at::TensorOptions().device(device);
  at::Tensor input = at::zeros({10}, options);
  // A shard one element too long, for any number of ranks (one included: NCCL's suite has one).
  const at::Tensor long_shard = at::zeros({shard_range(10, comm.rank(), comm.size()).length + 1}, options);
  EXPECT_THROW(comm.reduce_scatter(long_shard, input, ReduceOp::kSum), UsageError);
  EXPECT_THROW(comm.all_gather(input, long_shard), UsageError);
  EXPECT_THROW(comm.all_reduce(at::zeros({4, 4}, options).t(), ReduceOp::kSum), UsageError);  // not contiguous
  EXPECT_THROW(comm.broadcast(input, comm.size()), UsageError);
  EXPECT_THROW(comm.reduce(input, ReduceOp::kSum, -1), UsageError);
  EXPECT_THROW(comm.send(input, comm.rank()), UsageError);
  EXPECT_THROW(comm.all_reduce(at::zeros({2}, at::TensorOptions().dtype(at::kBool).device(device)), ReduceOp::kSum),
               UsageError);
}

void check_everything(Communicator& comm, const at::Device& device) {
  check_all_reduce(comm, device);
  check_reduce_scatter(comm, device);
  check_all_gather(comm, device);
  check_broadcast_and_point_to_point(comm, device);
  check_reduce(comm, device);
  check_async_and_split(comm, device);
  check_bad_arguments(comm, device);
}

TEST(MpiCommunicator, EveryOperationMatchesTheReference) {
  MpiCommunicator comm(MPI_COMM_WORLD, "world", nullptr);
  check_everything(comm, at::kCPU);
  EXPECT_THROW(comm.all_reduce(at::zeros({3}, at::kComplexFloat), ReduceOp::kSum), UsageError);
}

TEST(MpiCommunicator, LargeBuffersAreExact) {
  MpiCommunicator comm(MPI_COMM_WORLD, "world", nullptr);
  const std::int64_t n = (1 << 22) + 3;
  at::Tensor tensor = input_of(comm.rank(), n, at::kFloat, at::kCPU);
  comm.all_reduce(tensor, ReduceOp::kSum)->wait();
  expect_equal(tensor, reference(ReduceOp::kSum, comm.size(), n), "4M floats");
}

TEST(ShardRange, CoversEveryElementOnce) {
  for (std::int64_t n : {0, 1, 5, 8, 4099}) {
    for (int size : {1, 2, 3, 4, 7}) {
      std::int64_t next = 0;
      for (int rank = 0; rank < size; ++rank) {
        const ShardRange range = shard_range(n, rank, size);
        EXPECT_EQ(range.offset, std::min(next, n));
        EXPECT_GE(range.length, 0);
        next = range.offset + range.length;
      }
      EXPECT_EQ(next, n) << n << " over " << size;
    }
  }
}

TEST(NcclCommunicatorCuda, EveryOperationMatchesTheReference) {
  ALBION_SKIP_WITHOUT_CUDA();
  NcclCommunicator comm(MPI_COMM_SELF, 0, "self", nullptr);
  check_everything(comm, at::Device(at::kCUDA, 0));
  EXPECT_THROW(comm.all_reduce(at::zeros({3}), ReduceOp::kSum), UsageError);  // a CPU tensor
}

}  // namespace
}  // namespace albion::collectives
