// File: tests/support/run_albion.h
// Runs the built `albion` executable as a user would and captures what it printed.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace albion::testing_support {

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// `environment` is prepended as shell assignments, e.g. "ALBION_LOG_LEVEL=debug".
inline Outcome run_albion(const std::string& arguments, const std::string& environment = "") {
  Outcome run;
  std::string command = environment + " " + ALBION_EXECUTABLE + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) {
    run.output.append(buffer.data(), n);
  }
  int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

inline int count_lines(const std::string& text) {
  int lines = 0;
  for (char c : text) lines += c == '\n';
  return lines;
}

}  // namespace albion::testing_support
