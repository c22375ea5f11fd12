// File: collectives/bootstrap.h
// From an MPI world (launch/ owns MPI_Init) to everything a distributed trainer needs: where this
// rank sits, its CUDA device, the device mesh, a watchdog, and one communicator per mesh
// dimension. Every configuration error (a mesh that does not factor the world, more ranks on a
// node than devices, a backend that cannot move the trainer's tensors) is found collectively and
// reported on every rank as a UsageError before any communicator is built, so no rank is left
// waiting for a peer that already quit.
#pragma once

#include <mpi.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "collectives/communicator.h"
#include "collectives/device_mesh.h"
#include "collectives/watchdog.h"
#include "collectives/world.h"

namespace albion::collectives {

struct BootstrapOptions {
  std::string backend = "auto";  // auto (nccl with CUDA, mpi without), mpi, nccl
  bool use_cuda = false;         // the trainer computes on CUDA devices
  int cuda_devices = 0;          // visible on this node
  int tensor = 1;
  int pipeline = 1;
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  Watchdog::AbortAction on_abort;  // default: log, abort NCCL, MPI_Abort
};

struct ProcessGroups {
  WorldInfo world;
  DeviceMesh mesh{1, 1, 1};
  std::optional<int> cuda_device;  // local rank's device, with CUDA
  std::string backend;             // "mpi" or "nccl"
  std::shared_ptr<Watchdog> watchdog;
  std::shared_ptr<Communicator> world_group;
  std::shared_ptr<Communicator> data;
  std::shared_ptr<Communicator> pipeline;
  std::shared_ptr<Communicator> tensor;
};

// Collective over `world`.
ProcessGroups bootstrap(MPI_Comm world, const BootstrapOptions& options);

// Collective: UsageError on every rank unless every rank passed the same `text` (compared by a
// 64-bit hash). `what` names it in the error ("the resolved recipe").
void require_identical_on_all_ranks(MPI_Comm comm, std::string_view text, std::string_view what);

}  // namespace albion::collectives
