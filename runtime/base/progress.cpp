// File: runtime/base/progress.cpp
#include "runtime/base/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "runtime/base/check.h"

namespace albion {

ProgressBar::ProgressBar(std::string label, double total, std::string unit, double scale,
                         bool terminal, std::chrono::seconds plain_interval)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      scale_(scale),
      terminal_(terminal),
      plain_interval_(plain_interval),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  // Not finished: the work failed. End a half-drawn terminal line so the error starts cleanly,
  // and print no "done" line.
  std::lock_guard lock(draw_mutex_);
  if (!finished_ && terminal_ && drawn_) {
    [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, "\n", 1);
  }
}

std::string ProgressBar::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  long s = std::lround(seconds);
  char text[32];
  if (s < 60) {
    std::snprintf(text, sizeof(text), "%lds", s);
  } else if (s < 3600) {
    std::snprintf(text, sizeof(text), "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof(text), "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  }
  return text;
}

void ProgressBar::advance(double amount) {
  done_.fetch_add(amount);
  auto now = std::chrono::steady_clock::now();
  auto interval = terminal_ ? std::chrono::milliseconds(200)
                            : std::chrono::duration_cast<std::chrono::milliseconds>(plain_interval_);
  if (now - last_draw_ < interval) return;
  std::unique_lock lock(draw_mutex_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;
  last_draw_ = now;
  draw(false);
}

void ProgressBar::finish() {
  std::lock_guard lock(draw_mutex_);
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void ProgressBar::draw(bool final) {
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double done = done_.load();
  const double rate = elapsed > 0 ? done / elapsed : 0;
  char amount[96];
  if (total_ > 0) {
    std::snprintf(amount, sizeof(amount), "%.1f/%.1f %s", done / scale_, total_ / scale_,
                  unit_.c_str());
  } else {
    std::snprintf(amount, sizeof(amount), "%.1f %s", done / scale_, unit_.c_str());
  }
  char speed[64];
  std::snprintf(speed, sizeof(speed), "%.1f %s/s", rate / scale_, unit_.c_str());
  std::string line = str_cat(label_, "  ", amount, "  ", speed);
  if (final) {
    line += str_cat("  in ", format_duration(elapsed));
  } else if (total_ > 0 && rate > 0) {
    line += str_cat("  ETA ", format_duration((total_ - done) / rate));
  }
  // On a terminal, redraw in place (\r, clear to end of line); elsewhere one line per draw.
  drawn_ = true;
  std::string out = terminal_ ? str_cat("\r", line, "\033[K", final ? "\n" : "") : line + "\n";
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, out.data(), out.size());
}

}  // namespace albion
