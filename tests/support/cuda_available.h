// File: tests/support/cuda_available.h
// GPU tests skip (not fail) on machines without a CUDA device: ALBION_SKIP_WITHOUT_CUDA();
#pragma once

#include <ATen/detail/CUDAHooksInterface.h>
#include <gtest/gtest.h>

#define ALBION_SKIP_WITHOUT_CUDA()                                  \
  do {                                                              \
    if (::at::detail::getCUDAHooks().getNumGPUs() == 0) {           \
      GTEST_SKIP() << "no CUDA device on this machine";             \
    }                                                               \
  } while (false)
