// File: runtime/base/log.h
// Rank-aware logging to stderr: "albion [r3 node7] 12:04:05 message". By default only rank 0
// prints info messages (a thousand ranks repeating "step 10" is noise); warnings and errors print
// on every rank. Thread-safe; a line is written with one write() so ranks' lines do not interleave.
#pragma once

#include <string>

#include "runtime/base/check.h"
#include "runtime/base/env.h"

namespace albion::log {

// Called once at start-up with what read_process_environment() found.
void configure(const ProcessEnvironment& env);
void set_rank(int rank);
bool enabled(LogLevel level);
void write(LogLevel level, const std::string& message);

template <typename... Args>
void debug(Args&&... args) {
  if (enabled(LogLevel::kDebug)) write(LogLevel::kDebug, str_cat(std::forward<Args>(args)...));
}
template <typename... Args>
void info(Args&&... args) {
  if (enabled(LogLevel::kInfo)) write(LogLevel::kInfo, str_cat(std::forward<Args>(args)...));
}
template <typename... Args>
void warning(Args&&... args) {
  if (enabled(LogLevel::kWarning)) write(LogLevel::kWarning, str_cat(std::forward<Args>(args)...));
}
template <typename... Args>
void error(Args&&... args) {
  write(LogLevel::kError, str_cat(std::forward<Args>(args)...));
}

}  // namespace albion::log
