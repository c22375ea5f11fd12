// File: runtime/loaded_libraries.cpp
#include "runtime/loaded_libraries.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace albion::runtime {

std::vector<std::string> loaded_libraries(std::string_view prefix) {
  std::vector<std::string> paths;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    std::string name = std::filesystem::path(path).filename().string();
    if (name.rfind(prefix, 0) != 0 || name.find(".so") == std::string::npos) continue;
    std::error_code error;
    std::filesystem::path real = std::filesystem::canonical(path, error);
    std::string key = error ? path : real.string();
    if (std::find(paths.begin(), paths.end(), key) == paths.end()) paths.push_back(key);
  }
  return paths;
}

}  // namespace albion::runtime
