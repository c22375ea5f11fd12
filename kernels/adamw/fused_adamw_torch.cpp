// File: kernels/adamw/fused_adamw_torch.cpp
// Torch layer of the fused AdamW step: checks every operand, then one launch (CUDA) or the
// reference (CPU).

#include <unordered_set>

#include "kernels/adamw/fused_adamw.h"
#include "kernels/common/device_table.h"
#include "kernels/common/kernel_device.h"
#include "kernels/common/tensor_checks.h"
#include "runtime/base/check.h"

namespace albion::kernels {

void fused_adamw_step(const std::vector<AdamWOperand>& operands, const AdamWHyper& hyper) {
  if (operands.empty()) return;
  ALBION_CHECK_AS(UsageError, operands.front().parameter.defined(), "fused AdamW: an undefined parameter");
  const at::Device device = operands.front().parameter.device();
  std::vector<AdamWTensor> tensors;
  // Blocks update their chunks concurrently: memory written through two operands would race.
  std::unordered_set<const void*> written;
  for (const AdamWOperand& o : operands) {
    for (const at::Tensor* t : {&o.parameter, &o.gradient, &o.exp_avg, &o.exp_avg_sq}) {
      ALBION_CHECK_AS(UsageError, t->defined() && t->scalar_type() == at::kFloat && t->device() == device &&
                                      t->numel() == o.parameter.numel(),
                      "fused AdamW: every operand must be fp32 on ", device, " with ", o.parameter.numel(),
                      " elements");
      check_contiguous(*t, "fused AdamW operand");
      ALBION_CHECK_AS(UsageError, t == &o.gradient || t->numel() == 0 || written.insert(t->data_ptr()).second,
                      "fused AdamW: a parameter or state tensor appears twice (each must have its own memory)");
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
