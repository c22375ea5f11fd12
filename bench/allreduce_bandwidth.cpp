// File: bench/allreduce_bandwidth.cpp
// All-reduce bandwidth from 1 KiB to 256 MiB, run under mpirun:
//
//   mpirun -np 2 build/bench/allreduce_bandwidth              # MPI backend vs raw MPI_Allreduce
//   mpirun -np 8 build/bench/allreduce_bandwidth --nccl       # NCCL bus bandwidth, one rank per GPU
//
// MPI mode times Albion's MpiCommunicator (all_reduce(sum) + wait, through its communication
// thread) and a raw MPI_Allreduce(MPI_IN_PLACE) on the same buffer, alternating the two at each
// size so machine noise hits both alike, and prints medians and their ratio. NCCL mode prints the
// nccl-tests quantities: algorithm bandwidth (bytes / time) and bus bandwidth (x 2(n-1)/n).
#include <c10/cuda/CUDAFunctions.h>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "collectives/mpi_communicator.h"
#include "collectives/nccl_communicator.h"
#include "launch/mpi_session.h"

namespace {

using albion::collectives::Communicator;
using albion::collectives::ReduceOp;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

int iterations_for(std::int64_t bytes) {
  return bytes <= (1 << 20) ? 200 : bytes <= (16 << 20) ? 40 : 16;
}

// The slowest rank's time of `body`, barrier-aligned.
template <typename Body>
double timed(MPI_Comm comm, Body body) {
  MPI_Barrier(comm);
  const double start = MPI_Wtime();
  body();
  double seconds = MPI_Wtime() - start;
  MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, comm);
  return seconds;
}

void mpi_mode(MPI_Comm world, int rank, int size) {
  albion::collectives::MpiCommunicator albion_comm(world, "world", nullptr);
  MPI_Comm raw;
  MPI_Comm_dup(world, &raw);
  if (rank == 0) {
    std::printf("# all-reduce (sum, fp32) over %d ranks: Albion MPI backend vs raw MPI_Allreduce, medians\n", size);
    std::printf("%12s %12s %12s %10s %10s %8s\n", "bytes", "albion_us", "raw_us", "albion_GB/s", "raw_GB/s", "ratio");
  }
  for (std::int64_t bytes = 1024; bytes <= (std::int64_t{256} << 20); bytes *= 4) {
    const std::int64_t count = bytes / 4;
    at::Tensor buffer = at::ones({count});
    std::vector<double> ours;
    std::vector<double> theirs;
    const auto run_ours = [&] {
      buffer.fill_(1.0f);  // keep values finite; the same cache state before either call
      return timed(world, [&] { albion_comm.all_reduce(buffer, ReduceOp::kSum)->wait(); });
    };
    const auto run_raw = [&] {
      buffer.fill_(1.0f);
      return timed(world, [&] {
        MPI_Allreduce(MPI_IN_PLACE, buffer.data_ptr(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, raw);
      });
    };
    for (int i = 0; i < iterations_for(bytes) + 2; ++i) {
      // Alternate which goes first, so neither always follows the other.
      double a = 0;
      double b = 0;
      if (i % 2 == 0) {
        a = run_ours();
        b = run_raw();
      } else {
        b = run_raw();
        a = run_ours();
      }
      if (i >= 2) {  // warm-up
        ours.push_back(a);
        theirs.push_back(b);
      }
    }
    const double t_ours = median(ours);
    const double t_raw = median(theirs);
    if (rank == 0) {
      std::printf("%12lld %12.1f %12.1f %10.3f %10.3f %8.3f\n", static_cast<long long>(bytes), t_ours * 1e6, t_raw * 1e6,
                  bytes / t_ours / 1e9, bytes / t_raw / 1e9, t_raw / t_ours);
    }
  }
  MPI_Comm_free(&raw);
}

void nccl_mode(MPI_Comm world, int rank, int size) {
  int local_rank = 0;
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_free(&node);
  const int devices = static_cast<int>(c10::cuda::device_count());
  if (devices == 0) {
    if (rank == 0) std::printf("no CUDA device on this machine\n");
    return;
  }
  albion::collectives::NcclCommunicator comm(world, local_rank % devices, "world", nullptr);
  const at::TensorOptions options = at::TensorOptions().dtype(at::kBFloat16).device(at::kCUDA, comm.device());
  if (rank == 0) {
    std::printf("# NCCL all-reduce (sum, bf16) over %d ranks, medians (busbw = algbw x 2(n-1)/n)\n", size);
    std::printf("%12s %12s %12s %12s\n", "bytes", "time_us", "algbw_GB/s", "busbw_GB/s");
  }
  for (std::int64_t bytes = 1024; bytes <= (std::int64_t{256} << 20); bytes *= 4) {
    at::Tensor buffer = at::ones({bytes / 2}, options);
    std::vector<double> times;
    for (int i = 0; i < iterations_for(bytes) + 5; ++i) {
      const double t = timed(world, [&] {
        comm.all_reduce(buffer, ReduceOp::kSum)->wait();
        c10::cuda::device_synchronize();
      });
      if (i >= 5) times.push_back(t);
      buffer.fill_(1.0f);
    }
    const double t = median(times);
    const double algbw = bytes / t / 1e9;
    if (rank == 0) {
      std::printf("%12lld %12.1f %12.3f %12.3f\n", static_cast<long long>(bytes), t * 1e6, algbw,
                  algbw * 2.0 * (size - 1) / size);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  albion::launch::MpiSession session;
  int rank = 0;
  int size = 1;
  MPI_Comm_rank(session.world(), &rank);
  MPI_Comm_size(session.world(), &size);
  const bool nccl = argc > 1 && std::strcmp(argv[1], "--nccl") == 0;
  if (nccl) nccl_mode(session.world(), rank, size);
  else mpi_mode(session.world(), rank, size);
  return 0;
}
