// File: collectives/mpi_check.h
// ALBION_MPI_CHECK(MPI_Allreduce(...)): throws albion::SystemError with the MPI error text, the
// call, the world rank and the host. Communicators must use MPI_ERRORS_RETURN for this to see
// errors (set by collectives::describe_world and the MPI session).
#pragma once

#include <mpi.h>

#include "runtime/base/error.h"

namespace albion::collectives {

[[noreturn]] void throw_mpi_error(int status, const char* call, const char* file, int line);

}  // namespace albion::collectives

#define ALBION_MPI_CHECK(call)                                                              \
  do {                                                                                      \
    int albion_mpi_status_ = (call);                                                        \
    if (albion_mpi_status_ != MPI_SUCCESS) [[unlikely]] {                                   \
      ::albion::collectives::throw_mpi_error(albion_mpi_status_, #call, __FILE__, __LINE__); \
    }                                                                                       \
  } while (false)
