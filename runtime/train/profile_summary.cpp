// File: runtime/train/profile_summary.cpp
#include "runtime/train/profile_summary.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <sstream>

namespace albion::train {
namespace {

constexpr std::size_t kNameWidth = 110;

std::string format_double(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

void append_table(std::ostringstream& out, const char* title, const ProfileTable& table, std::int64_t steps,
                  std::size_t top) {
  out << "\n" << title << ", self time per step:\n";
  if (table.rows.empty()) {
    out << "  (none)\n";
    return;
  }
  out << "    ms/step   share  calls/step  name\n";
  const auto per_step = static_cast<double>(std::max<std::int64_t>(steps, 1));
  for (std::size_t i = 0; i < std::min(top, table.rows.size()); ++i) {
    const ProfileRow& row = table.rows[i];
    out << format_double("%11.3f", row.self_ms / per_step)
        << format_double("%7.1f%%", table.total_ms > 0 ? 100 * row.self_ms / table.total_ms : 0)
        << format_double("%12.1f", static_cast<double>(row.calls) / per_step) << "  "
        << shorten_name(row.name, kNameWidth) << "\n";
  }
  if (table.rows.size() > top) out << "  ... " << table.rows.size() - top << " more names\n";
}

}  // namespace

std::string shorten_name(const std::string& name, std::size_t width) {
  if (name.size() <= width) return name;
  std::string cut = name.substr(0, width > 3 ? width - 3 : 0);
  cut.append("...");
  return cut;
}

ProfileTable self_times(const std::vector<ProfiledEvent>& events, EventKind kind) {
  // Per thread (or stream), parents before their children: by start, the longer first.
  std::map<std::uint64_t, std::vector<const ProfiledEvent*>> by_thread;
  for (const ProfiledEvent& e : events) {
    if (e.kind == kind && e.end_ns >= e.start_ns) by_thread[e.thread].push_back(&e);
  }
  std::map<std::string, ProfileRow> rows;
  for (auto& [thread, list] : by_thread) {
    std::sort(list.begin(), list.end(), [](const ProfiledEvent* a, const ProfiledEvent* b) {
      return a->start_ns != b->start_ns ? a->start_ns < b->start_ns : a->end_ns > b->end_ns;
    });
    std::vector<double> self_ns(list.size());
    std::vector<std::size_t> open;  // the chain of events enclosing the current one
    for (std::size_t i = 0; i < list.size(); ++i) {
      const ProfiledEvent& e = *list[i];
      self_ns[i] = static_cast<double>(e.end_ns - e.start_ns);
      while (!open.empty() && list[open.back()]->end_ns <= e.start_ns) open.pop_back();
      if (open.empty()) {
        open.push_back(i);
      } else if (e.end_ns <= list[open.back()]->end_ns) {
        self_ns[open.back()] -= self_ns[i];  // the enclosing event loses the time this one took
        open.push_back(i);
      }  // else it sticks out of the event it starts in: counted whole, the parent of none
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      ProfileRow& row = rows[list[i]->name];
      row.name = list[i]->name;
      row.calls += 1;
      row.self_ms += std::max(0.0, self_ns[i]) / 1e6;
    }
  }
  ProfileTable table;
  for (auto& [name, row] : rows) {
    table.total_ms += row.self_ms;
    table.rows.push_back(std::move(row));
  }
  std::stable_sort(table.rows.begin(), table.rows.end(),
                   [](const ProfileRow& a, const ProfileRow& b) { return a.self_ms > b.self_ms; });
  return table;
}

ProfileSummary summarize_profile(const std::vector<ProfiledEvent>& events, std::int64_t first_step) {
  ProfileSummary summary;
  summary.first_step = first_step;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> steps;
  for (const ProfiledEvent& e : events) {
    if (e.kind != EventKind::kStep) continue;
    steps.emplace_back(e.start_ns, e.end_ns);
    summary.wall_ms += static_cast<double>(e.end_ns - e.start_ns) / 1e6;
  }
  std::sort(steps.begin(), steps.end());
  summary.steps = static_cast<std::int64_t>(steps.size());
  const auto in_a_step = [&steps](const ProfiledEvent& e) {
    auto next = std::upper_bound(steps.begin(), steps.end(), std::make_pair(e.start_ns, UINT64_MAX));
    return next != steps.begin() && e.start_ns < std::prev(next)->second;
  };
  std::vector<ProfiledEvent> inside;
  for (const ProfiledEvent& e : events) {
    if (e.kind != EventKind::kStep && in_a_step(e)) inside.push_back(e);
  }
  summary.device = self_times(inside, EventKind::kDevice);
  if (summary.device.rows.empty()) {
    // Device times are the GPU's clock mapped onto the host's; should no kernel land inside a
    // step, all of them are shown rather than none.
    summary.device = self_times(events, EventKind::kDevice);
    summary.device_outside_steps = !summary.device.rows.empty();
  }
  summary.host = self_times(inside, EventKind::kHostOperator);
  return summary;
}

std::string format_profile_summary(const ProfileSummary& summary, std::size_t top) {
  const auto steps = static_cast<double>(std::max<std::int64_t>(summary.steps, 1));
  std::ostringstream out;
  if (summary.steps == 1) out << "step " << summary.first_step;
  else out << "steps " << summary.first_step << "-" << summary.first_step + summary.steps - 1;
  out << ": wall " << format_double("%.3f", summary.wall_ms / steps) << " ms per step";
  if (!summary.device.rows.empty()) {
    out << ", device busy " << format_double("%.3f", summary.device.total_ms / steps) << " ms per step ("
        << format_double("%.0f", summary.wall_ms > 0 ? 100 * summary.device.total_ms / summary.wall_ms : 0)
        << "% of wall; concurrent streams count twice)";
  }
  out << "\n";
  if (summary.device_outside_steps) out << "(no device event fell inside a step's span: all are counted)\n";
  append_table(out, "device (kernels and copies)", summary.device, summary.steps, top);
  append_table(out, "host (torch operators)", summary.host, summary.steps, top);
  return out.str();
}

}  // namespace albion::train
