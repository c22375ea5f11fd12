// File: tests/support/run_command.h
// Runs a shell command (a reference implementation in Python, say) and captures what it printed.
#pragma once

#include <array>
#include <cstdio>
#include <string>
#include <utility>

namespace albion::testing_support {

// The command's exit status, as pclose returns it (0 for success), and its stdout and stderr.
inline std::pair<int, std::string> run_command(const std::string& command) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string output;
  std::array<char, 4096> buffer{};
  while (const std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  return {::pclose(pipe), output};
}

// True when `python` imports every module of `modules` ("transformers, torch"): the interop tests
// skip without them.
inline bool python_imports(const std::string& python, const std::string& modules) {
  return run_command(python + " -c 'import " + modules + "'").first == 0;
}

}  // namespace albion::testing_support
