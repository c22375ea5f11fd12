// File: runtime/base/log.cpp
#include "runtime/base/log.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>

namespace albion::log {
namespace {

struct LogState {
  std::atomic<int> level{static_cast<int>(LogLevel::kInfo)};
  std::atomic<int> rank{0};
  std::string hostname;
  std::mutex write_mutex;
};

LogState& state() {
  static LogState instance;
  return instance;
}

const char* level_tag(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug: ";
    case LogLevel::kInfo: return "";
    case LogLevel::kWarning: return "warning: ";
    case LogLevel::kError: return "error: ";
  }
  return "";
}

}  // namespace

void configure(const ProcessEnvironment& env) {
  LogState& s = state();
  std::lock_guard lock(s.write_mutex);
  s.level = static_cast<int>(env.log_level);
  s.rank = env.world_rank;
  s.hostname = env.hostname;
}

void set_rank(int rank) { state().rank = rank; }

bool enabled(LogLevel level) {
  const LogState& s = state();
  if (static_cast<int>(level) < s.level.load()) return false;
  // Info and debug from rank 0 only, unless debugging where every rank's view matters.
  return level >= LogLevel::kWarning || s.rank.load() == 0 ||
         s.level.load() == static_cast<int>(LogLevel::kDebug);
}

void write(LogLevel level, const std::string& message) {
  LogState& s = state();
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm local{};
  localtime_r(&now, &local);
  char clock[16];
  std::strftime(clock, sizeof(clock), "%H:%M:%S", &local);
  std::lock_guard lock(s.write_mutex);
  std::string line = str_cat("albion [r", s.rank.load(), s.hostname.empty() ? "" : " ", s.hostname,
                             "] ", clock, " ", level_tag(level), message, "\n");
  // One write() per line keeps lines whole when many ranks share a terminal or file.
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace albion::log
