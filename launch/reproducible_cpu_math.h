// File: launch/reproducible_cpu_math.h
// Torch's CPU matrix products run in oneMKL, which by default picks its code path and its thread
// count at run time (MKL_VERBOSE shows "CNR:OFF Dyn:1"): two identical runs on a loaded machine
// can then differ in the last bits, and a resumed run no longer equals the uninterrupted one.
// Before torch first calls MKL, the process asks for conditional numerical reproducibility
// (MKL_CBWR=AUTO: the same results run to run on one machine) and a fixed thread count
// (MKL_DYNAMIC=FALSE), unless the user set either variable.
#pragma once

namespace albion::launch {

void make_cpu_math_reproducible();

}  // namespace albion::launch
