// File: kernels/adamw/fused_adamw_torch.cpp
// Torch layer of the fused AdamW step: checks every operand, then one launch (CUDA) or the
// reference (CPU).

#include <algorithm>
#include <cstdint>

#include "kernels/adamw/fused_adamw.h"
#include "kernels/common/device_table.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "runtime/base/check.h"

namespace albion::kernels {
namespace {

// Blocks update their chunks concurrently: memory written through two operands would race, and a
// gradient in memory that a block writes could be read before or after its update. Operands are
// contiguous (checked before), so each one's memory is the byte range [begin, end).
void check_memory_disjoint(const std::vector<AdamWOperand>& operands) {
  struct Bytes {
    std::uintptr_t begin, end;
  };
  const auto bytes = [](const at::Tensor& t) {
    const auto begin = reinterpret_cast<std::uintptr_t>(t.data_ptr());
    return Bytes{begin, begin + t.nbytes()};
  };
  std::vector<Bytes> written, gradients;
  for (const AdamWOperand& o : operands) {
    for (const at::Tensor* t : {&o.parameter, &o.exp_avg, &o.exp_avg_sq, &o.bf16_copy}) {
      if (t->defined() && t->numel() > 0) written.push_back(bytes(*t));
    }
    if (o.gradient.numel() > 0) gradients.push_back(bytes(o.gradient));
  }
  std::sort(written.begin(), written.end(), [](Bytes a, Bytes b) { return a.begin < b.begin; });
  for (std::size_t i = 1; i < written.size(); ++i) {
    ALBION_CHECK_AS(UsageError, written[i].begin >= written[i - 1].end,
                    "fused AdamW: two parameter, state or bf16 copy tensors share memory (each must have its own)");
  }
  // The written ranges are disjoint and sorted, so their ends are sorted too: the first one that
  // ends after a gradient begins is the only one that can overlap it.
  for (const Bytes g : gradients) {
    const auto next = std::upper_bound(written.begin(), written.end(), g.begin,
                                       [](std::uintptr_t at, Bytes w) { return at < w.end; });
    ALBION_CHECK_AS(UsageError, next == written.end() || next->begin >= g.end,
                    "fused AdamW: a gradient shares memory with a parameter, state or bf16 copy tensor");
  }
}

}  // namespace

void fused_adamw_step(const std::vector<AdamWOperand>& operands, const AdamWHyper& hyper) {
  if (operands.empty()) return;
  ALBION_CHECK_AS(UsageError, operands.front().parameter.defined(), "fused AdamW: an undefined parameter");
  const at::Device device = operands.front().parameter.device();
  std::vector<AdamWTensor> tensors;
  for (const AdamWOperand& o : operands) {
    for (const at::Tensor* t : {&o.parameter, &o.gradient, &o.exp_avg, &o.exp_avg_sq}) {
      ALBION_CHECK_AS(UsageError, t->defined() && t->scalar_type() == at::kFloat && t->device() == device &&
                                      t->numel() == o.parameter.numel(),
                      "fused AdamW: every operand must be fp32 on ", device, " with ", o.parameter.numel(),
                      " elements");
      check_contiguous(*t, "fused AdamW operand");
    }
    std::uint16_t* copy = nullptr;
    if (o.bf16_copy.defined()) {
      ALBION_CHECK_AS(UsageError, o.bf16_copy.scalar_type() == at::kBFloat16 && o.bf16_copy.device() == device &&
                                      o.bf16_copy.numel() == o.parameter.numel(),
                      "fused AdamW: a bf16 copy must be bf16 on ", device, " with ", o.parameter.numel(), " elements");
      check_contiguous(o.bf16_copy, "fused AdamW bf16 copy");
      copy = reinterpret_cast<std::uint16_t*>(o.bf16_copy.data_ptr());
    }
    tensors.push_back({o.parameter.data_ptr<float>(), o.gradient.data_ptr<float>(), o.exp_avg.data_ptr<float>(),
                       o.exp_avg_sq.data_ptr<float>(), copy, o.parameter.numel(), o.decayed});
  }
  check_memory_disjoint(operands);
  if (runs_kernels(device)) {
    const KernelLaunch launch(device);
    const std::vector<std::byte> chunks = fused_adamw_chunk_table(tensors);
    if (chunks.empty()) return;
    const at::Tensor table = device_table(chunks, device);
    launch_fused_adamw(table.data_ptr(), chunks.size(), hyper, launch.stream());
  } else {
    ALBION_CHECK_AS(UsageError, device.is_cpu(), "fused AdamW: unsupported device ", device);
    fused_adamw_reference(tensors, hyper);
  }
  for (const AdamWOperand& o : operands) {
    for (const at::Tensor* t : {&o.parameter, &o.exp_avg, &o.exp_avg_sq, &o.bf16_copy}) mark_written_in_place(*t);
  }
}

}  // namespace albion::kernels
