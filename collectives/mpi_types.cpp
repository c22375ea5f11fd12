// File: collectives/mpi_types.cpp
#include "collectives/mpi_types.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <mutex>

#include "collectives/mpi_check.h"
#include "runtime/base/check.h"

namespace albion::collectives {
namespace {

// Note [Reducing 16-bit floats in MPI]
// Each pairwise combination widens both operands to fp32, adds (or takes the max), and rounds
// back once: the result of a reduction tree of depth d carries at most d roundings, the same
// error NCCL's bf16 ring has, and the wire carries 2 bytes per element (upcasting the whole
// buffer to fp32 first would double the traffic). MPI may combine in any order, so results are
// reproducible for a fixed world size and MPI configuration, not across them.
template <typename Half, typename Combine>
void combine_16bit(void* in, void* inout, int* count, Combine combine) {
  const Half* a = static_cast<const Half*>(in);
  Half* b = static_cast<Half*>(inout);
  for (int i = 0; i < *count; ++i) b[i] = Half(combine(static_cast<float>(a[i]), static_cast<float>(b[i])));
}

constexpr auto kPlus = [](float x, float y) { return x + y; };
constexpr auto kMax = [](float x, float y) { return std::max(x, y); };

extern "C" void bf16_sum(void* in, void* inout, int* count, MPI_Datatype*) {
  combine_16bit<c10::BFloat16>(in, inout, count, kPlus);
}
extern "C" void bf16_max(void* in, void* inout, int* count, MPI_Datatype*) {
  combine_16bit<c10::BFloat16>(in, inout, count, kMax);
}
extern "C" void fp16_sum(void* in, void* inout, int* count, MPI_Datatype*) {
  combine_16bit<c10::Half>(in, inout, count, kPlus);
}
extern "C" void fp16_max(void* in, void* inout, int* count, MPI_Datatype*) {
  combine_16bit<c10::Half>(in, inout, count, kMax);
}

struct SixteenBitOps {
  MPI_Op bf16_sum = MPI_OP_NULL, bf16_max = MPI_OP_NULL, fp16_sum = MPI_OP_NULL, fp16_max = MPI_OP_NULL;
};

// Created once per process, after MPI_Init, and kept until MPI_Finalize frees them.
const SixteenBitOps& sixteen_bit_ops() {
  static std::once_flag once;
  static SixteenBitOps ops;
  std::call_once(once, [] {
    ALBION_MPI_CHECK(MPI_Op_create(&bf16_sum, 1, &ops.bf16_sum));
    ALBION_MPI_CHECK(MPI_Op_create(&bf16_max, 1, &ops.bf16_max));
    ALBION_MPI_CHECK(MPI_Op_create(&fp16_sum, 1, &ops.fp16_sum));
    ALBION_MPI_CHECK(MPI_Op_create(&fp16_max, 1, &ops.fp16_max));
  });
  return ops;
}

}  // namespace

MPI_Datatype mpi_datatype(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return MPI_FLOAT;
    case at::kDouble: return MPI_DOUBLE;
    case at::kBFloat16:
    case at::kHalf: return MPI_UINT16_T;
    case at::kInt: return MPI_INT32_T;
    case at::kLong: return MPI_INT64_T;
    case at::kShort: return MPI_INT16_T;
    case at::kChar: return MPI_INT8_T;
    case at::kByte: return MPI_UINT8_T;
    case at::kBool: return MPI_C_BOOL;
    default: throw UsageError(str_cat("MPI backend: tensors of dtype ", type, " are not supported"));
  }
}

MpiReduction mpi_reduction(at::ScalarType type, ReduceOp op) {
  ALBION_CHECK_AS(UsageError, type != at::kBool, "MPI backend: cannot reduce bool tensors");
  const bool floating = at::isFloatingType(type);
  ALBION_CHECK_AS(UsageError, floating || op != ReduceOp::kAvg,
                  "MPI backend: avg of integer tensors (", type, ") is not defined; use sum");
  const MPI_Datatype datatype = mpi_datatype(type);
  const bool divide = op == ReduceOp::kAvg;
  const bool max = op == ReduceOp::kMax;
  if (type == at::kBFloat16 || type == at::kHalf) {
    const SixteenBitOps& ops = sixteen_bit_ops();
    const bool bf16 = type == at::kBFloat16;
    return {datatype, bf16 ? (max ? ops.bf16_max : ops.bf16_sum) : (max ? ops.fp16_max : ops.fp16_sum), divide};
  }
  return {datatype, max ? MPI_MAX : MPI_SUM, divide};
}

}  // namespace albion::collectives
