// File: runtime/train/profile_summary.cpp
#include "runtime/train/profile_summary.h"

#include <algorithm>
#include <cstdio>
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
        << format_double("%12.1f", static_cast<double>(row.calls) / per_step) << "  " << shorten_name(row.name, kNameWidth) << "\n";
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

ProfileTable self_times(const std::vector<ProfiledEvent>& events, bool on_device) {
  // Per thread (or stream), parents before their children: by start, the longer first.
  std::map<std::uint64_t, std::vector<const ProfiledEvent*>> by_thread;
  for (const ProfiledEvent& e : events) {
    if (e.on_device == on_device && e.end_ns >= e.start_ns) by_thread[e.thread].push_back(&e);
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
      if (!open.empty()) {
        // The enclosing event loses the part of its time this one covers.
        const ProfiledEvent& parent = *list[open.back()];
        self_ns[open.back()] -= static_cast<double>(std::min(e.end_ns, parent.end_ns) - e.start_ns);
      }
      open.push_back(i);
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

std::string format_profile_summary(const ProfileWindow& window, const ProfileTable& device,
                                   const ProfileTable& host, std::size_t top) {
  const auto steps = static_cast<double>(std::max<std::int64_t>(window.steps, 1));
  std::ostringstream out;
  if (window.steps == 1) out << "step " << window.first_step;
  else out << "steps " << window.first_step << "-" << window.first_step + window.steps - 1;
  out << ": wall "
      << format_double("%.3f", window.wall_ms / steps) << " ms per step";
  if (!device.rows.empty()) {
    out << ", device busy " << format_double("%.3f", device.total_ms / steps) << " ms per step ("
        << format_double("%.0f", window.wall_ms > 0 ? 100 * device.total_ms / window.wall_ms : 0)
        << "% of wall; concurrent streams count twice)";
  }
  out << "\n";
  append_table(out, "device (kernels and copies)", device, window.steps, top);
  append_table(out, "host (operators and runtime calls)", host, window.steps, top);
  return out.str();
}

}  // namespace albion::train
