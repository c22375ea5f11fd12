// File: tests/runtime/base/progress_test.cpp
#include <gtest/gtest.h>

#include "runtime/base/progress.h"

namespace albion {
namespace {

TEST(ProgressBar, FormatsDurations) {
  EXPECT_EQ(ProgressBar::format_duration(0), "0s");
  EXPECT_EQ(ProgressBar::format_duration(59.4), "59s");
  EXPECT_EQ(ProgressBar::format_duration(65), "1m05s");
  EXPECT_EQ(ProgressBar::format_duration(3 * 3600 + 120), "3h02m");
  EXPECT_EQ(ProgressBar::format_duration(-1), "?");
}

}  // namespace
}  // namespace albion
