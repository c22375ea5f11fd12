// File: collectives/world.cpp
#include "collectives/world.h"

#include "collectives/mpi_check.h"

namespace albion::collectives {

WorldInfo describe_world(MPI_Comm comm) {
  ALBION_MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  WorldInfo info;
  ALBION_MPI_CHECK(MPI_Comm_rank(comm, &info.rank));
  ALBION_MPI_CHECK(MPI_Comm_size(comm, &info.size));

  MPI_Comm node = MPI_COMM_NULL;
  ALBION_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, info.rank, MPI_INFO_NULL, &node));
  ALBION_MPI_CHECK(MPI_Comm_rank(node, &info.local_rank));
  ALBION_MPI_CHECK(MPI_Comm_size(node, &info.local_size));
  ALBION_MPI_CHECK(MPI_Comm_free(&node));

  // Count nodes: one "leader" (local rank 0) per node.
  int is_leader = info.local_rank == 0 ? 1 : 0;
  ALBION_MPI_CHECK(MPI_Allreduce(&is_leader, &info.node_count, 1, MPI_INT, MPI_SUM, comm));

  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  ALBION_MPI_CHECK(MPI_Get_processor_name(name, &length));
  info.hostname.assign(name, length);
  return info;
}

}  // namespace albion::collectives
