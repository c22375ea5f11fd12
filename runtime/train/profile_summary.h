// File: runtime/train/profile_summary.h
// Where a profiled window's steps spent their time, from the profiler's events: per name, how
// often it ran and its self time (its own duration less that of the events nested in it on the
// same thread), for the device (kernels, copies) and the host (torch operators) apart. Only events
// that start inside a step's marker count: the loop's other work between steps (logging,
// evaluation, checkpoints) is left out. Pure: no torch, so the arithmetic is tested on made-up
// events.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace albion::train {

enum class EventKind {
  kStep,          // a step's marker: its span is the step's wall time
  kHostOperator,  // a torch operator or autograd node on a host thread
  kDevice,        // a kernel, copy or memset on the GPU
  kOther,         // runtime and driver calls, profiler overhead, ...: not tabulated
};

struct ProfiledEvent {
  std::string name;
  EventKind kind = EventKind::kOther;
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

// The events of one kind, by name. An event that sticks out of the one it starts in is counted
// whole and nests nothing (the profiler can file an event under another thread).
ProfileTable self_times(const std::vector<ProfiledEvent>& events, EventKind kind);

struct ProfileSummary {
  std::int64_t first_step = 0;  // counted from 1, as in the log
  std::int64_t steps = 0;       // step markers seen
  double wall_ms = 0;           // of those steps together
  ProfileTable device;
  ProfileTable host;
  bool device_outside_steps = false;  // no kernel started inside a step: the table has them all
};

// Tables of the events that start inside a step marker.
ProfileSummary summarize_profile(const std::vector<ProfiledEvent>& events, std::int64_t first_step);

// The text of profile/rank<R>.summary.txt: the window, device-busy against wall time per step,
// then the `top` costliest rows of each table with their share of it. Names are cut to fit.
std::string format_profile_summary(const ProfileSummary& summary, std::size_t top);

// `name` cut to `width` characters, the last three "..." when it had to be cut.
std::string shorten_name(const std::string& name, std::size_t width);

}  // namespace albion::train
