// File: tests/runtime/base/staging_directory_test.cpp
#include <gtest/gtest.h>

#include <filesystem>

#include "runtime/base/error.h"
#include "runtime/base/staging_directory.h"
#include "tests/support/temp_dir.h"

namespace albion {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

TEST(StagingDirectory, PublishesOnlyOnCommit) {
  TempDir dir;
  const std::string final_path = dir / "out";
  {
    StagingDirectory staging(final_path, Overwrite::kRefuse);
    EXPECT_EQ(staging.path(), final_path + ".partial");
    dir.write("out.partial/file", "data");
    EXPECT_FALSE(fs::exists(final_path));
  }  // not committed: removed
  EXPECT_FALSE(fs::exists(final_path + ".partial"));
  EXPECT_FALSE(fs::exists(final_path));

  StagingDirectory staging(final_path, Overwrite::kRefuse);
  dir.write("out.partial/file", "data");
  staging.commit();
  EXPECT_TRUE(fs::exists(final_path + "/file"));
  EXPECT_FALSE(fs::exists(final_path + ".partial"));
}

TEST(StagingDirectory, RefusesOrReplacesAnExistingDirectory) {
  TempDir dir;
  dir.write("out/old", "old");
  EXPECT_THROW(StagingDirectory(dir / "out", Overwrite::kRefuse), UsageError);
  StagingDirectory staging(dir / "out", Overwrite::kReplace);
  dir.write("out.partial/new", "new");
  EXPECT_TRUE(fs::exists(dir / "out/old"));  // still the old one until commit
  staging.commit();
  EXPECT_TRUE(fs::exists(dir / "out/new"));
  EXPECT_FALSE(fs::exists(dir / "out/old"));
  EXPECT_FALSE(fs::exists(dir / "out.replaced"));
}

}  // namespace
}  // namespace albion
