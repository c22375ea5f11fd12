// File: tests/runtime/metrics/metrics_test.cpp
// metrics.jsonl records and TensorBoard event files, read back by the real `tensorboard` Python
// package (installed by scripts/setup.sh into the environment ALBION_PYTHON names).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/metrics/metrics_writer.h"
#include "runtime/metrics/tensorboard_writer.h"
#include "tests/support/temp_dir.h"

namespace albion::metrics {
namespace {

using testing_support::TempDir;

TEST(Crc32c, KnownCheckValue) {
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);  // the CRC-32C catalogue's check value
  EXPECT_EQ(crc32c(""), 0u);
}

TEST(MetricsWriter, WritesOneJsonObjectPerRecordWithNullForMissing) {
  TempDir dir;
  {
    MetricsWriter writer(dir.path(), false);
    writer.write(0, {{"loss", 5.5}, {"lr", 1e-3}, {"mfu", std::nullopt}});
    writer.write(1, {{"val_loss", 4.25}});
  }
  std::ifstream in(dir / "metrics.jsonl");
  std::string line;
  std::getline(in, line);
  nlohmann::json first = nlohmann::json::parse(line);
  EXPECT_EQ(first["step"], 0);
  EXPECT_EQ(first["loss"], 5.5);
  EXPECT_TRUE(first["mfu"].is_null());
  std::getline(in, line);
  EXPECT_EQ(nlohmann::json::parse(line)["val_loss"], 4.25);
}

// Runs the real `tensorboard` reader over `directory` and returns what the script printed.
std::string read_with_tensorboard(const TempDir& dir, const std::string& body) {
  const std::string script =
      "import sys\n"
      "from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n"
      "acc = EventAccumulator(sys.argv[1]); acc.Reload()\n" + body;
  std::ofstream(dir / "read.py") << script;
  const std::string command = std::string(ALBION_PYTHON) + " " + (dir / "read.py") + " " + dir.path() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  if (pclose(pipe) != 0) output += "\n(reader failed)";
  return output;
}

TEST(TensorBoardWriter, TheTensorboardPackageReadsOurScalars) {
  TempDir dir;
  {
    MetricsWriter writer(dir.path(), true);
    for (int step = 0; step < 5; ++step) writer.write(step, {{"loss", 10.0 - step}, {"lr", 0.5}});
  }
  const std::string output = read_with_tensorboard(
      dir, "print(sorted(acc.Tags()['scalars']))\n"
           "print([(e.step, e.value) for e in acc.Scalars('loss')])\n");
  EXPECT_NE(output.find("['loss', 'lr']"), std::string::npos) << output;
  EXPECT_NE(output.find("[(0, 10.0), (1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0)]"), std::string::npos) << output;
}

// A run resumed at step 2 redoes steps 2 and 3: the JSONL says so, and TensorBoard shows each step
// once, the first session's later events (every tag) dropped.
TEST(MetricsWriter, AResumedRunSupersedesTheStepsItRedoes) {
  TempDir dir;
  {
    MetricsWriter first(dir.path(), true);
    for (int step = 0; step < 5; ++step) first.write(step, {{"loss", 10.0 - step}});
    first.write(4, {{"val_loss", 3.0}});
  }
  {
    MetricsWriter resumed(dir.path(), true);
    resumed.mark_resumed(2);
    for (int step = 2; step < 4; ++step) resumed.write(step, {{"loss", 20.0 + step}});
  }
  std::ifstream in(dir / "metrics.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 9u);
  EXPECT_EQ(lines[6], R"({"step":2,"event":"resumed"})");

  const std::string output = read_with_tensorboard(
      dir, "print([(e.step, e.value) for e in acc.Scalars('loss')])\n"
           "print('val_loss', len(acc.Scalars('val_loss')) if 'val_loss' in acc.Tags()['scalars'] else 0)\n");
  EXPECT_NE(output.find("[(0, 10.0), (1, 9.0), (2, 22.0), (3, 23.0)]"), std::string::npos) << output;
  EXPECT_NE(output.find("val_loss 0"), std::string::npos) << output;
}

}  // namespace
}  // namespace albion::metrics
