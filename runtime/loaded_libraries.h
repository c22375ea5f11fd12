// File: runtime/loaded_libraries.h
// Which shared libraries this process has mapped, read from /proc/self/maps. Used by `albion
// doctor` and a test to show that exactly one copy of libcudart, libnccl and libcudnn is loaded
// (Note [One copy of each CUDA library] in cmake/AlbionRuntimePaths.cmake).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace albion::runtime {

// Distinct real paths of mapped files whose file name starts with `prefix` and contains ".so"
// (e.g. prefix "libnccl" finds ".../nvidia/nccl/lib/libnccl.so.2").
std::vector<std::string> loaded_libraries(std::string_view prefix);

}  // namespace albion::runtime
