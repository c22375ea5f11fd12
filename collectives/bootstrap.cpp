// File: collectives/bootstrap.cpp
#include "collectives/bootstrap.h"

#include <cstdint>
#include <iomanip>
#include <sstream>
#include <vector>

#include "collectives/mpi_check.h"
#include "collectives/mpi_communicator.h"
#include "collectives/nccl_communicator.h"
#include "runtime/base/check.h"

namespace albion::collectives {
namespace {

// Collective: when any rank's `problem` is set, every rank throws UsageError (the rank that found
// it with its own message, the others pointing at it).
void fail_together(MPI_Comm world, const std::optional<std::string>& problem) {
  int rank = 0;
  ALBION_MPI_CHECK(MPI_Comm_rank(world, &rank));
  // The lowest rank that found a problem, or INT_MAX.
  int mine = problem ? rank : INT32_MAX;
  int first = INT32_MAX;
  ALBION_MPI_CHECK(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, world));
  if (problem) throw UsageError(*problem);
  if (first != INT32_MAX) {
    throw UsageError(str_cat("rank ", first, " found a configuration error (its message says which); "
                             "no rank started"));
  }
}

std::string resolve_backend(const BootstrapOptions& options) {
  if (options.backend == "auto") return options.use_cuda ? "nccl" : "mpi";
  ALBION_CHECK_AS(UsageError, options.backend == "mpi" || options.backend == "nccl",
                  "recipe key 'parallel.backend' must be auto, mpi or nccl, got '", options.backend, "'");
  ALBION_CHECK_AS(UsageError, options.backend != "nccl" || options.use_cuda,
                  "recipe key 'parallel.backend' is nccl, which moves CUDA tensors, but training runs on CPU");
  ALBION_CHECK_AS(UsageError, options.backend != "mpi" || !options.use_cuda,
                  "recipe key 'parallel.backend' is mpi, which moves CPU tensors, but training runs on CUDA; use nccl");
  return options.backend;
}

std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

}  // namespace

ProcessGroups bootstrap(MPI_Comm world, const BootstrapOptions& options) {
  ProcessGroups groups;
  groups.world = describe_world(world);
  std::optional<std::string> problem;
  try {
    groups.backend = resolve_backend(options);
    groups.mesh = DeviceMesh(groups.world.size, options.tensor, options.pipeline);
    if (options.use_cuda) {
      ALBION_CHECK_AS(UsageError, groups.world.local_size <= options.cuda_devices, "host ",
                      groups.world.hostname, " runs ", groups.world.local_size, " ranks but has ",
                      options.cuda_devices, " CUDA device(s); start at most one rank per GPU "
                      "(albion launch --gpus-per-node)");
      groups.cuda_device = groups.world.local_rank;
    }
  } catch (const UsageError& e) {
    problem = e.what();
  }
  fail_together(world, problem);

  groups.watchdog = std::make_shared<Watchdog>(options.timeout, groups.world.rank, options.on_abort);
  if (groups.backend == "nccl") {
    groups.world_group = std::make_shared<NcclCommunicator>(world, *groups.cuda_device, "world", groups.watchdog);
  } else {
    groups.world_group = std::make_shared<MpiCommunicator>(world, "world", groups.watchdog);
  }
  const int rank = groups.world.rank;
  const DeviceMesh& mesh = groups.mesh;
  const auto split = [&](MeshDimension dimension) -> std::shared_ptr<Communicator> {
    return groups.world_group->split(mesh.color(dimension, rank), mesh.index(dimension, rank),
                                     mesh_dimension_name(dimension));
  };
  groups.data = split(MeshDimension::kData);
  groups.pipeline = split(MeshDimension::kPipeline);
  groups.tensor = split(MeshDimension::kTensor);
  return groups;
}

void require_identical_on_all_ranks(MPI_Comm comm, std::string_view text, std::string_view what) {
  int rank = 0;
  int size = 1;
  ALBION_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  ALBION_MPI_CHECK(MPI_Comm_size(comm, &size));
  const std::uint64_t mine = fnv1a(text);
  std::vector<std::uint64_t> all(static_cast<std::size_t>(size));
  ALBION_MPI_CHECK(MPI_Allgather(&mine, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, comm));
  for (int r = 1; r < size; ++r) {
    if (all[r] == all[0]) continue;
    std::ostringstream hashes;
    hashes << std::hex << std::setfill('0') << "rank 0: " << std::setw(16) << all[0] << ", rank " << std::dec
           << r << ": " << std::hex << std::setw(16) << all[r];
    throw UsageError(str_cat(what, " differs between ranks (", hashes.str(),
                             "); every rank must be started with the same files and overrides"));
  }
}

}  // namespace albion::collectives
