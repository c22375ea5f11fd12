// File: collectives/nccl_check.h
// ALBION_NCCL_CHECK(ncclAllReduce(...)): throws albion::SystemError with NCCL's error string, its
// last error message, the NCCL version, the rank and the host.
#pragma once

#include <nccl.h>

#include "runtime/base/error.h"

namespace albion::collectives {

[[noreturn]] void throw_nccl_error(ncclResult_t status, ncclComm_t comm, const char* call,
                                   const char* file, int line);

}  // namespace albion::collectives

#define ALBION_NCCL_CHECK(call, comm)                                                   \
  do {                                                                                  \
    ncclResult_t albion_nccl_status_ = (call);                                          \
    if (albion_nccl_status_ != ncclSuccess) [[unlikely]] {                              \
      ::albion::collectives::throw_nccl_error(albion_nccl_status_, (comm), #call, __FILE__, \
                                              __LINE__);                                \
    }                                                                                   \
  } while (false)
