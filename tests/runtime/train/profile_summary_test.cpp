// File: tests/runtime/train/profile_summary_test.cpp
// The profile summary's arithmetic on made-up events: self time is an event's duration less that
// of the events directly inside it on the same thread; only what starts inside a step counts;
// names add up; the text cuts and counts.
#include "runtime/train/profile_summary.h"

#include <gtest/gtest.h>

namespace albion::train {
namespace {

constexpr std::uint64_t kMs = 1000000;

ProfiledEvent host(const std::string& name, std::uint64_t start_ms, std::uint64_t end_ms, std::uint64_t thread = 1) {
  return {name, EventKind::kHostOperator, thread, start_ms * kMs, end_ms * kMs};
}

ProfiledEvent kernel(const std::string& name, std::uint64_t start_ms, std::uint64_t end_ms, std::uint64_t stream = 7) {
  return {name, EventKind::kDevice, stream, start_ms * kMs, end_ms * kMs};
}

ProfiledEvent step(std::int64_t number, std::uint64_t start_ms, std::uint64_t end_ms) {
  return {"ProfilerStep#" + std::to_string(number), EventKind::kStep, 1, start_ms * kMs, end_ms * kMs};
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
  const ProfileTable table = self_times(events, EventKind::kHostOperator);
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

TEST(ProfileSummary, AnEventStickingOutOfItsParentNestsNothing) {
  // The profiler files some events under a thread they did not run on: `overhead` starts inside
  // mm and ends after it. It is counted whole and is nobody's child or parent.
  const std::vector<ProfiledEvent> events = {host("P", 0, 100), host("mm", 10, 40), host("overhead", 30, 60),
                                             host("F", 45, 55)};
  const ProfileTable table = self_times(events, EventKind::kHostOperator);
  EXPECT_DOUBLE_EQ(row(table, "P")->self_ms, 60);  // less mm and F
  EXPECT_DOUBLE_EQ(row(table, "mm")->self_ms, 30);
  EXPECT_DOUBLE_EQ(row(table, "overhead")->self_ms, 30);
  EXPECT_DOUBLE_EQ(row(table, "F")->self_ms, 10);
}

TEST(ProfileSummary, OnlyWhatStartsInsideAStepCounts) {
  const std::vector<ProfiledEvent> events = {
      step(4, 0, 50), step(5, 60, 100),
      host("mm", 0, 10), host("mm", 60, 65),  // in the steps
      host("log_step", 52, 58),                // between them: logging, evaluation, checkpoints
      host("eval", 100, 120),                  // after the last
      kernel("gemm", 1, 5), kernel("gemm", 5, 8), kernel("softmax", 2, 3, 8), kernel("eval_kernel", 101, 110),
      {"cudaLaunchKernel", EventKind::kOther, 1, 1 * kMs, 2 * kMs}};
  const ProfileSummary summary = summarize_profile(events, 4);
  EXPECT_EQ(summary.first_step, 4);
  EXPECT_EQ(summary.steps, 2);
  EXPECT_DOUBLE_EQ(summary.wall_ms, 90);
  ASSERT_EQ(summary.host.rows.size(), 1u);
  EXPECT_EQ(summary.host.rows[0].name, "mm");
  EXPECT_EQ(summary.host.rows[0].calls, 2);
  EXPECT_DOUBLE_EQ(summary.host.rows[0].self_ms, 15);
  ASSERT_EQ(summary.device.rows.size(), 2u);
  EXPECT_EQ(summary.device.rows[0].name, "gemm");
  EXPECT_EQ(summary.device.rows[0].calls, 2);  // back to back on one stream
  EXPECT_DOUBLE_EQ(summary.device.rows[0].self_ms, 7);
  EXPECT_DOUBLE_EQ(summary.device.total_ms, 8);
  EXPECT_FALSE(summary.device_outside_steps);

  // Should the device's clock put no kernel inside a step, all kernels are shown, and said so.
  const ProfileSummary skewed = summarize_profile({step(1, 0, 10), kernel("gemm", 20, 30)}, 1);
  ASSERT_EQ(skewed.device.rows.size(), 1u);
  EXPECT_TRUE(skewed.device_outside_steps);
  EXPECT_NE(format_profile_summary(skewed, 5).find("no device event fell inside"), std::string::npos);
}

TEST(ProfileSummary, TextGivesPerStepTimesSharesAndCuts) {
  ProfileSummary summary;
  summary.first_step = 4;
  summary.steps = 2;
  summary.wall_ms = 50;
  summary.device.rows = {{std::string(300, 'k'), 8, 30}, {"small_kernel", 2, 10}};
  summary.device.total_ms = 40;
  summary.host.rows = {{"aten::mm", 4, 6}, {"aten::add", 4, 2}, {"aten::view", 40, 1}};
  summary.host.total_ms = 9;
  const std::string text = format_profile_summary(summary, 2);
  EXPECT_NE(text.find("steps 4-5: wall 25.000 ms per step, device busy 20.000 ms per step (80% of wall"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    ms/step   share  calls/step  name\n     15.000   75.0%         4.0  " +
                      std::string(107, 'k') + "...\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\n      3.000   66.7%         2.0  aten::mm\n"), std::string::npos) << text;
  EXPECT_NE(text.find("... 1 more names"), std::string::npos) << text;
  EXPECT_EQ(text.find("aten::view"), std::string::npos) << text;
  // A CPU run of one step: no device time.
  summary.steps = 1;
  summary.wall_ms = 10;
  summary.device = {};
  const std::string cpu = format_profile_summary(summary, 5);
  EXPECT_TRUE(cpu.starts_with("step 4: wall 10.000 ms per step\n")) << cpu;
  EXPECT_EQ(cpu.find("device busy"), std::string::npos);
  EXPECT_NE(cpu.find("device (kernels and copies), self time per step:\n  (none)"), std::string::npos) << cpu;
}

TEST(ProfileSummary, ShortenNameKeepsShortNames) {
  EXPECT_EQ(shorten_name("aten::mm", 10), "aten::mm");
  EXPECT_EQ(shorten_name("0123456789ab", 10), "0123456...");
}

}  // namespace
}  // namespace albion::train
