// File: collectives/mpi_types.h
// How torch dtypes travel through MPI. MPI has no 16-bit floats, so bf16 and fp16 move as
// MPI_UINT16_T and reduce through user-defined operations (Note [Reducing 16-bit floats in MPI]);
// averages are a sum followed by one division, as NCCL's ncclAvg does.
#pragma once

#include <ATen/ATen.h>
#include <mpi.h>

#include "collectives/communicator.h"

namespace albion::collectives {

// The MPI datatype that carries one element of `type` (UsageError for types MPI cannot carry).
MPI_Datatype mpi_datatype(at::ScalarType type);

struct MpiReduction {
  MPI_Datatype datatype;
  MPI_Op op;
  bool divide_by_size;  // kAvg: divide the sum by the communicator size afterwards
};

// UsageError for reductions that have no meaning (kAvg over integers, any reduction over bool).
// Needs MPI initialised (the 16-bit operations are created on first use).
MpiReduction mpi_reduction(at::ScalarType type, ReduceOp op);

}  // namespace albion::collectives
