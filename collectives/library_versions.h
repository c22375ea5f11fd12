// File: collectives/library_versions.h
// Versions of the communication libraries actually loaded, for `albion doctor` and error messages.
// Both functions may be called before MPI_Init.
#pragma once

#include <string>

namespace albion::collectives {

// e.g. "Open MPI v4.1.4, package: Debian OpenMPI, ..." (first line of MPI_Get_library_version).
std::string mpi_library_version();

// e.g. "2.28.9", from ncclGetVersion of the loaded libnccl.
std::string nccl_version();

}  // namespace albion::collectives
