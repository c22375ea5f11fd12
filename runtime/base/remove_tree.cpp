// File: runtime/base/remove_tree.cpp
#include "runtime/base/remove_tree.h"

#include <ftw.h>
#include <stdio.h>

#include <cerrno>

namespace albion {
namespace {

int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

}  // namespace

bool remove_tree(const std::string& path) noexcept {
  // Depth first (children before their directory), without following symbolic links.
  const int status = nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return status == 0 || errno == ENOENT;
}

}  // namespace albion
