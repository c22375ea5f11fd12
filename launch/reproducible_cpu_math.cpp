// File: launch/reproducible_cpu_math.cpp
#include "launch/reproducible_cpu_math.h"

#include <cstdlib>

namespace albion::launch {

void make_cpu_math_reproducible() {
  setenv("MKL_CBWR", "AUTO", /*overwrite=*/0);
  setenv("MKL_DYNAMIC", "FALSE", /*overwrite=*/0);
}

}  // namespace albion::launch
