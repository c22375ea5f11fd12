// File: runtime/base/remove_tree.h
// Removes a file or a directory with everything in it, like `rm -rf`.
//
// Albion calls this instead of std::filesystem::remove_all: the torch wheel's libtorch.so exports
// its own copy of std::filesystem, and its remove_all jumps to address 0 when it wins symbol
// resolution (Note [std::filesystem from libtorch.so] in cmake/AlbionRuntimePaths.cmake; the link
// order there fixes it on Debian, but not with every toolchain).
#pragma once

#include <string>

namespace albion {

// Returns false if something could not be removed (a missing path is not an error).
bool remove_tree(const std::string& path) noexcept;

}  // namespace albion
