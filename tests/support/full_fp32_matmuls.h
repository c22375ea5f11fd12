// File: tests/support/full_fp32_matmuls.h
// Matrix products in full fp32 while one is alive (cuBLAS's TF32 off, the previous setting restored
// after, also when an assertion returns early): for GPU results compared against fp32 or fp64
// references at tolerances TF32's 10-bit mantissa would miss.
#pragma once

#include <ATen/Context.h>

namespace albion::testing_support {

class FullFp32Matmuls {
 public:
  FullFp32Matmuls() : previous_(at::globalContext().allowTF32CuBLAS()) {
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  ~FullFp32Matmuls() { at::globalContext().setAllowTF32CuBLAS(previous_); }
  FullFp32Matmuls(const FullFp32Matmuls&) = delete;
  FullFp32Matmuls& operator=(const FullFp32Matmuls&) = delete;

 private:
  bool previous_;
};

}  // namespace albion::testing_support
