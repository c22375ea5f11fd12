// File: collectives/library_errors.cpp
// Error messages for failed MPI and NCCL calls (collectives/mpi_check.h, collectives/nccl_check.h).
#include <unistd.h>

#include <string>

#include "collectives/library_versions.h"
#include "collectives/mpi_check.h"
#include "collectives/nccl_check.h"
#include "runtime/base/check.h"

namespace albion::collectives {
namespace {

std::string where_am_i() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  int initialized = 0;
  int finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  int rank = -1;
  if (initialized && !finalized) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return str_cat("rank ", rank, " on ", host);
}

}  // namespace

void throw_mpi_error(int status, const char* call, const char* file, int line) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw SystemError(str_cat("MPI error in ", call, ": ", std::string(text, length), " (",
                            where_am_i(), ") [", file, ":", line, "]"));
}

void throw_nccl_error(ncclResult_t status, ncclComm_t comm, const char* call, const char* file,
                      int line) {
  const char* last = comm != nullptr ? ncclGetLastError(comm) : ncclGetLastError(nullptr);
  throw SystemError(str_cat("NCCL error in ", call, ": ", ncclGetErrorString(status),
                            (last && *last) ? str_cat(" (", last, ")") : std::string(), ", NCCL ",
                            nccl_version(), " (", where_am_i(), ") [", file, ":", line, "]"));
}

}  // namespace albion::collectives
