// File: tests/runtime/loaded_libraries_test.cpp
// Note [One copy of each CUDA library]: a process linked like `albion` maps exactly one libcudart,
// libnccl and libcudnn, and it is the torch wheel's (the same copy torch's kernels use).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "runtime/device.h"
#include "runtime/loaded_libraries.h"

namespace albion::runtime {
namespace {

TEST(LoadedLibraries, TorchCudaIsLoaded) {
  ComputeReport report = probe_compute();
  EXPECT_TRUE(report.torch_has_cuda) << "libtorch_cuda was not loaded (dropped by --as-needed?)";
  EXPECT_FALSE(report.torch_cuda_build.empty());
}

class SingleCopy : public testing::TestWithParam<const char*> {};

TEST_P(SingleCopy, ExactlyOneCopyFromTheWheel) {
  probe_compute();  // touches the CUDA runtime and cuDNN, as doctor does
  std::vector<std::string> copies = loaded_libraries(GetParam());
  ASSERT_EQ(copies.size(), 1u) << GetParam() << " mapped " << copies.size() << " times";
  EXPECT_NE(copies.front().find("/nvidia/"), std::string::npos) << copies.front();
}

INSTANTIATE_TEST_SUITE_P(CudaLibraries, SingleCopy,
                         testing::Values("libcudart", "libnccl", "libcudnn.so", "libcublas.so"));

// Note [std::filesystem from libtorch.so]: our calls must bind to the system libstdc++.
TEST(LoadedLibraries, StdFilesystemComesFromLibstdcxx) {
  void* symbol = dlsym(RTLD_DEFAULT, "_ZNSt10filesystem10remove_allERKNS_7__cxx114pathERSt10error_code");
  ASSERT_NE(symbol, nullptr);
  Dl_info info{};
  ASSERT_NE(dladdr(symbol, &info), 0);
  EXPECT_NE(std::string(info.dli_fname).find("libstdc++"), std::string::npos) << info.dli_fname;
  std::error_code error;
  const auto dir = std::filesystem::temp_directory_path() / "albion-remove-all-check";
  std::filesystem::create_directories(dir / "nested", error);
  EXPECT_EQ(std::filesystem::remove_all(dir, error), 2u);
}

TEST(LoadedLibraries, UnknownPrefixFindsNothing) {
  EXPECT_TRUE(loaded_libraries("libdefinitely-not-loaded").empty());
}

}  // namespace
}  // namespace albion::runtime
