// File: runtime/base/progress.h
// A progress line for long work: "prepare  412.0/2480.1 MB  38.2 MB/s  ETA 54s". On a terminal it
// redraws one line on stderr at most a few times a second; elsewhere (CI logs, files) it prints a
// plain line every `plain_interval` so logs stay short. Thread-safe: workers call advance().
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>

namespace albion {

class ProgressBar {
 public:
  // `total` in `unit`s (e.g. bytes with unit "MB" and scale 1e6); total 0 means unknown.
  ProgressBar(std::string label, double total, std::string unit, double scale, bool terminal,
              std::chrono::seconds plain_interval = std::chrono::seconds(30));
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void advance(double amount);
  // Prints the final line (with the average rate) once. Not calling it (an exception unwinding
  // the work) prints no final line.
  void finish();

  // "1m05s", "3h02m", "12s" — also used by the trainer's ETA.
  static std::string format_duration(double seconds);

 private:
  void draw(bool final);

  std::string label_;
  double total_;
  std::string unit_;
  double scale_;
  bool terminal_;
  std::chrono::seconds plain_interval_;
  std::atomic<double> done_{0};
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  std::mutex draw_mutex_;
  bool finished_ = false;
  bool drawn_ = false;
};

}  // namespace albion
