// File: tests/runtime/models/attention_backend_test.cpp
// The SDPA backend torch picks for a model's attention, named; on CUDA (suite AttentionBackendCuda)
// a fused one (flash or cuDNN or memory-efficient) for GPT-2 small in bf16, never the math fallback.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "runtime/models/attention_backend.h"
#include "tests/support/cuda_available.h"

namespace albion::models {
namespace {

TEST(AttentionBackend, NamesWhatTorchPicksOnTheCpu) {
  const std::set<std::string> known = {"math", "flash_attention", "efficient_attention", "cudnn_attention"};
  const std::string gpt2 = attention_backend(model_preset("gpt2"), 256, at::kCPU, at::kFloat);
  EXPECT_TRUE(known.contains(gpt2)) << gpt2;
  const std::string llama = attention_backend(model_preset("llama-3.2-1b"), 128, at::kCPU, at::kFloat);  // grouped-query
  EXPECT_TRUE(known.contains(llama)) << llama;
}

TEST(AttentionBackendCuda, GptTwoSmallGetsAFusedBackendInBf16) {
  ALBION_SKIP_WITHOUT_CUDA();
  const std::string backend = attention_backend(model_preset("gpt2"), 1024, at::Device(at::kCUDA, 0), at::kBFloat16);
  EXPECT_NE(backend, "math");
  EXPECT_EQ(backend.find("none"), std::string::npos) << backend;
}

}  // namespace
}  // namespace albion::models
