// File: collectives/world.h
// Where this process sits among its peers, from an MPI communicator it is given (collectives never
// call MPI_Init; launch/mpi_session.h owns that).
#pragma once

#include <mpi.h>

#include <string>

namespace albion::collectives {

struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the processes sharing this node's memory
  int local_size = 1;
  int node_count = 1;
  std::string hostname;
};

// Collective over `comm`: every rank must call it. Sets MPI_ERRORS_RETURN on `comm` so failures
// surface as exceptions (ALBION_MPI_CHECK) rather than MPI aborting without context.
WorldInfo describe_world(MPI_Comm comm);

}  // namespace albion::collectives
