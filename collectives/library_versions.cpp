// File: collectives/library_versions.cpp
#include "collectives/library_versions.h"

#include <mpi.h>
#include <nccl.h>

#include "runtime/base/check.h"

namespace albion::collectives {

std::string mpi_library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "unknown";
  std::string version(text, length);
  version = version.substr(0, version.find_first_of("\n,"));
  int major = 0;
  int minor = 0;
  MPI_Get_version(&major, &minor);
  return str_cat(version, " (MPI ", major, ".", minor, ")");
}

std::string nccl_version() {
  int code = 0;
  if (ncclGetVersion(&code) != ncclSuccess) return "unknown";
  // NCCL >= 2.9 encodes major*10000 + minor*100 + patch.
  return str_cat(code / 10000, ".", (code % 10000) / 100, ".", code % 100);
}

}  // namespace albion::collectives
