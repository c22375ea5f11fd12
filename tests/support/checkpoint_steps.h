// File: tests/support/checkpoint_steps.h
// Where a running job has got to, read from its checkpoint directory.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>

namespace albion::testing_support {

// The newest committed checkpoint's step in `directory` (a step-%08d directory, not a .tmp one),
// or -1.
inline long newest_committed_step(const std::string& directory) {
  long newest = -1;
  if (!std::filesystem::is_directory(directory)) return newest;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (name.size() == 13 && name.rfind("step-", 0) == 0) newest = std::max(newest, std::stol(name.substr(5)));
  }
  return newest;
}

}  // namespace albion::testing_support
