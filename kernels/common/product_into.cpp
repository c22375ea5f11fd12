// File: kernels/common/product_into.cpp
#include "kernels/common/product_into.h"

namespace albion::kernels {

void product_into(at::Tensor out, const at::Tensor& a, const at::Tensor& b, bool accumulate) {
  const at::ScalarType operands = a.scalar_type();
  if (operands == out.scalar_type() && b.scalar_type() == operands) {
    accumulate ? out.addmm_(a, b) : at::mm_out(out, a, b);
  } else if (out.is_cuda() && out.scalar_type() == at::kFloat && b.scalar_type() == operands &&
             (operands == at::kBFloat16 || operands == at::kHalf)) {
    accumulate ? at::addmm_out(out, out, a, b, at::kFloat) : at::mm_out(out, a, b, at::kFloat);
  } else {
    accumulate ? out.add_(at::mm(a, b)) : out.copy_(at::mm(a, b));
  }
}

}  // namespace albion::kernels
