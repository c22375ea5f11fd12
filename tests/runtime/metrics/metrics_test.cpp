// File: tests/runtime/metrics/metrics_test.cpp
// metrics.jsonl records and TensorBoard event files, read back by the real `tensorboard` Python
// package (installed by scripts/setup.sh into the environment ALBION_PYTHON names).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

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

TEST(TensorBoardWriter, TheTensorboardPackageReadsOurScalars) {
  TempDir dir;
  {
    MetricsWriter writer(dir.path(), true);
    for (int step = 0; step < 5; ++step) writer.write(step, {{"loss", 10.0 - step}, {"lr", 0.5}});
  }
  const std::string script =
      "import sys\n"
      "from tensorboard.backend.event_processing.event_accumulator import EventAccumulator\n"
      "acc = EventAccumulator(sys.argv[1]); acc.Reload()\n"
      "print(sorted(acc.Tags()['scalars']))\n"
      "print([(e.step, e.value) for e in acc.Scalars('loss')])\n";
  std::ofstream(dir / "read.py") << script;
  const std::string command = std::string(ALBION_PYTHON) + " " + (dir / "read.py") + " " + dir.path() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  ASSERT_EQ(pclose(pipe), 0) << output;
  EXPECT_NE(output.find("['loss', 'lr']"), std::string::npos) << output;
  EXPECT_NE(output.find("[(0, 10.0), (1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0)]"), std::string::npos) << output;
}

}  // namespace
}  // namespace albion::metrics
