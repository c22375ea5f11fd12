// File: tests/runtime/train/profile_summary_test.cpp
// The profile summary's arithmetic on made-up events: self time is an event's duration less that
// of the events directly inside it on the same thread; names add up; the text cuts and counts.
#include "runtime/train/profile_summary.h"

#include <gtest/gtest.h>

namespace albion::train {
namespace {

ProfiledEvent host(const std::string& name, std::uint64_t start_ms, std::uint64_t end_ms, std::uint64_t thread = 1) {
  return {name, false, thread, start_ms * 1000000, end_ms * 1000000};
}

const ProfileRow* row(const ProfileTable& table, const std::string& name) {
  for (const ProfileRow& r : table.rows) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

TEST(ProfileSummary, SelfTimeLeavesOutWhatRanInside) {
  // linear [0, 100] holds addmm [10, 40] (which holds copy [20, 30]) and add [50, 70]; another
  // thread's backward overlaps it in time but is not inside it; `after` starts where linear ends.
  const std::vector<ProfiledEvent> events = {
      host("linear", 0, 100), host("addmm", 10, 40), host("copy", 20, 30), host("add", 50, 70),
      host("backward", 5, 95, 2), host("after", 100, 110)};
  const ProfileTable table = self_times(events, false);
  EXPECT_DOUBLE_EQ(row(table, "linear")->self_ms, 50);
  EXPECT_DOUBLE_EQ(row(table, "addmm")->self_ms, 20);
  EXPECT_DOUBLE_EQ(row(table, "copy")->self_ms, 10);
  EXPECT_DOUBLE_EQ(row(table, "add")->self_ms, 20);
  EXPECT_DOUBLE_EQ(row(table, "backward")->self_ms, 90);
  EXPECT_DOUBLE_EQ(row(table, "after")->self_ms, 10);
  EXPECT_DOUBLE_EQ(table.total_ms, 200);  // each thread's wall time, counted once
  // Costliest first, ties by name.
  ASSERT_EQ(table.rows.size(), 6u);
  EXPECT_EQ(table.rows[0].name, "backward");
  EXPECT_EQ(table.rows[1].name, "linear");
  EXPECT_EQ(table.rows[2].name, "add");
  EXPECT_EQ(table.rows[3].name, "addmm");
}

TEST(ProfileSummary, NamesAddUpAndDeviceIsApart) {
  std::vector<ProfiledEvent> events = {host("mm", 0, 10), host("mm", 20, 25)};
  events.push_back({"gemm_kernel", true, 7, 0, 4000000});
  events.push_back({"gemm_kernel", true, 7, 4000000, 7000000});  // back to back on one stream
  events.push_back({"softmax_kernel", true, 8, 1000000, 2000000});
  const ProfileTable host_table = self_times(events, false);
  ASSERT_EQ(host_table.rows.size(), 1u);
  EXPECT_EQ(host_table.rows[0].calls, 2);
  EXPECT_DOUBLE_EQ(host_table.rows[0].self_ms, 15);
  const ProfileTable device = self_times(events, true);
  ASSERT_EQ(device.rows.size(), 2u);
  EXPECT_EQ(device.rows[0].name, "gemm_kernel");
  EXPECT_EQ(device.rows[0].calls, 2);
  EXPECT_DOUBLE_EQ(device.rows[0].self_ms, 7);
  EXPECT_DOUBLE_EQ(device.total_ms, 8);
}

TEST(ProfileSummary, TextGivesPerStepTimesSharesAndCuts) {
  ProfileTable device;
  device.rows = {{std::string(300, 'k'), 8, 30}, {"small_kernel", 2, 10}};
  device.total_ms = 40;
  ProfileTable host;
  host.rows = {{"aten::mm", 4, 6}, {"aten::add", 4, 2}, {"aten::view", 40, 1}};
  host.total_ms = 9;
  const std::string text = format_profile_summary({4, 2, 50}, device, host, 2);
  EXPECT_NE(text.find("steps 4-5: wall 25.000 ms per step, device busy 20.000 ms per step (80% of wall"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("15.000   75.0%         4.0  " + std::string(107, 'k') + "...\n"), std::string::npos) << text;
  EXPECT_NE(text.find("3.000   66.7%         2.0  aten::mm\n"), std::string::npos) << text;
  EXPECT_NE(text.find("... 1 more names"), std::string::npos) << text;
  EXPECT_EQ(text.find("aten::view"), std::string::npos) << text;
  // A CPU run: no device line, an empty device table.
  const std::string cpu = format_profile_summary({1, 1, 10}, {}, host, 5);
  EXPECT_TRUE(cpu.starts_with("step 1: wall 10.000 ms per step\n")) << cpu;
  EXPECT_EQ(cpu.find("device busy"), std::string::npos);
  EXPECT_NE(cpu.find("device (kernels and copies), self time per step:\n  (none)"), std::string::npos) << cpu;
}

TEST(ProfileSummary, ShortenNameKeepsShortNames) {
  EXPECT_EQ(shorten_name("aten::mm", 10), "aten::mm");
  EXPECT_EQ(shorten_name("0123456789ab", 10), "0123456...");
}

}  // namespace
}  // namespace albion::train
