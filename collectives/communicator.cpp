// File: collectives/communicator.cpp
#include "collectives/communicator.h"

#include <algorithm>

#include "collectives/operation_checks.h"
#include "runtime/base/check.h"

namespace albion::collectives {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
  }
  return "?";
}

ShardRange shard_range(std::int64_t numel, int rank, int size) {
  ALBION_CHECK(numel >= 0 && size > 0 && rank >= 0 && rank < size, "shard_range(", numel, ", ", rank, ", ", size, ")");
  const std::int64_t chunk = (numel + size - 1) / size;
  const std::int64_t offset = std::min(numel, chunk * rank);
  return {offset, std::min(chunk, numel - offset)};
}

std::string describe_operation(const Communicator& comm, std::string_view operation,
                               const at::Tensor& tensor) {
  return str_cat(operation, " of ", tensor.numel(), " x ", tensor.scalar_type(), " on '", comm.name(),
                 "' [", comm.backend(), ", rank ", comm.rank(), " of ", comm.size(), "]");
}

void check_operand(const Communicator& comm, std::string_view operation, const at::Tensor& tensor,
                   std::int64_t expected_numel) {
  ALBION_CHECK_AS(UsageError, tensor.defined(), comm.backend(), " ", operation, ": undefined tensor");
  ALBION_CHECK_AS(UsageError, tensor.is_contiguous(), comm.backend(), " ", operation,
                  ": tensor must be contiguous (got strides ", tensor.strides(), ")");
  ALBION_CHECK_AS(UsageError, expected_numel < 0 || tensor.numel() == expected_numel, comm.backend(), " ",
                  operation, ": tensor has ", tensor.numel(), " elements, expected ", expected_numel);
}

void check_peer(const Communicator& comm, std::string_view operation, int peer) {
  ALBION_CHECK_AS(UsageError, peer >= 0 && peer < comm.size() && peer != comm.rank(), comm.backend(), " ",
                  operation, ": peer ", peer, " is not another rank of '", comm.name(), "' (size ",
                  comm.size(), ")");
}

void check_root(const Communicator& comm, std::string_view operation, int root) {
  ALBION_CHECK_AS(UsageError, root >= 0 && root < comm.size(), comm.backend(), " ", operation, ": root ", root,
                  " outside '", comm.name(), "' (size ", comm.size(), ")");
}

}  // namespace albion::collectives
