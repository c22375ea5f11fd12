// File: kernels/common/dtype.h
// Element types our kernels accept, as plain values the launchers switch on (kernels' .cu files
// never include torch headers; the torch layer maps at::ScalarType to this).
#pragma once

namespace albion::kernels {

enum class DType { kFloat32, kBFloat16 };

}  // namespace albion::kernels
