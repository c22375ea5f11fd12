// File: tests/runtime/config/nearest_name_test.cpp
#include <gtest/gtest.h>

#include "runtime/config/nearest_name.h"

namespace albion::config {
namespace {

TEST(EditDistance, CountsEditsAndTranspositions) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("train", "train"), 0u);
  EXPECT_EQ(edit_distance("train", "trian"), 1u);  // transposition
  EXPECT_EQ(edit_distance("train", "rain"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
}

TEST(NearestName, SuggestsPlausibleTyposOnly) {
  const std::vector<std::string> names = {"train", "launch", "data", "ckpt", "keys", "doctor"};
  EXPECT_EQ(nearest_name("trian", names), "train");
  EXPECT_EQ(nearest_name("docter", names), "doctor");
  EXPECT_EQ(nearest_name("optimizer", names), std::nullopt);
  EXPECT_EQ(nearest_name("x", {}), std::nullopt);
}

}  // namespace
}  // namespace albion::config
