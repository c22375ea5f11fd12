// File: runtime/train/profile_summary.h
// Where a profiled step's time went, from the profiler's events: per name, how often it ran and
// its self time (its own duration less that of the events nested in it on the same thread), for
// the device (kernels, copies) and the host (operators, runtime calls) apart. Pure: no torch, so
// the arithmetic is tested on made-up events.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace albion::train {

struct ProfiledEvent {
  std::string name;
  bool on_device = false;    // a kernel or copy on the GPU, else host time
  std::uint64_t thread = 0;  // host thread, or the device's stream: nesting is within one
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
};

struct ProfileRow {
  std::string name;
  std::int64_t calls = 0;
  double self_ms = 0;
};

struct ProfileTable {
  std::vector<ProfileRow> rows;  // costliest first, then by name
  double total_ms = 0;
};

// The device's or the host's events, by name.
ProfileTable self_times(const std::vector<ProfiledEvent>& events, bool on_device);

struct ProfileWindow {
  std::int64_t first_step = 0;  // counted from 1, as in the log
  std::int64_t steps = 0;
  double wall_ms = 0;  // of the recorded steps together
};

// `name` cut to `width` characters, the last three "..." when it had to be cut.
std::string shorten_name(const std::string& name, std::size_t width);

// The text of profile/rank<R>.summary.txt: the window, device-busy against wall time per step,
// then the `top` costliest rows of each table with their share of it. Names are cut to fit.
std::string format_profile_summary(const ProfileWindow& window, const ProfileTable& device,
                                   const ProfileTable& host, std::size_t top);

}  // namespace albion::train
