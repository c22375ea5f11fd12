// File: collectives/operation_checks.h
// Argument checks and descriptions shared by the communicator backends (internal to collectives/).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "collectives/communicator.h"

namespace albion::collectives {

// "all_reduce(sum) of 1024 x Float on 'data' [mpi, rank 1 of 4]"
std::string describe_operation(const Communicator& comm, std::string_view operation, const at::Tensor& tensor);

// UsageError unless `tensor` is defined, contiguous and (when expected_numel >= 0) that long.
void check_operand(const Communicator& comm, std::string_view operation, const at::Tensor& tensor,
                   std::int64_t expected_numel = -1);

// UsageError unless `peer` is another rank of `comm`.
void check_peer(const Communicator& comm, std::string_view operation, int peer);

// UsageError unless `root` is a rank of `comm`.
void check_root(const Communicator& comm, std::string_view operation, int root);

}  // namespace albion::collectives
