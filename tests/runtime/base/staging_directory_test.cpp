// File: tests/runtime/base/staging_directory_test.cpp
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

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
  dir.write("out.replaced/mine", "a user's own directory");  // not a name replacing may take
  EXPECT_THROW(StagingDirectory(dir / "out", Overwrite::kRefuse), UsageError);
  StagingDirectory staging(dir / "out", Overwrite::kReplace);
  dir.write("out.partial/new", "new");
  EXPECT_TRUE(fs::exists(dir / "out/old"));  // still the old one until commit
  staging.commit();
  EXPECT_TRUE(fs::exists(dir / "out/new"));
  EXPECT_FALSE(fs::exists(dir / "out/old"));
  EXPECT_FALSE(fs::exists(dir / "out.partial"));
  EXPECT_TRUE(fs::exists(dir / "out.replaced/mine"));
}

TEST(StagingDirectory, PublishesOnlyWhatTheCallerWrote) {
  TempDir dir;
  StagingDirectory staging(dir / "out", Overwrite::kRefuse);
  dir.write("out.partial/file", "data");
  staging.commit();
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir / "out")) names.push_back(entry.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"file"});
}

TEST(StagingDirectory, RemovesOnlyLeftoversOfInterruptedRuns) {
  TempDir dir;
  // An interrupted run: its marker is there but no process holds its lock.
  dir.write("out.partial/.albion-staging", "");
  dir.write("out.partial/half-written", "x");
  {
    StagingDirectory staging(dir / "out", Overwrite::kRefuse);
    EXPECT_FALSE(fs::exists(dir / "out.partial/half-written"));
  }

  // Not Albion's: no marker. Refused, and left as it was.
  dir.write("mine.partial/notes", "a user's own directory");
  EXPECT_THROW(StagingDirectory(dir / "mine", Overwrite::kRefuse), UsageError);
  EXPECT_TRUE(fs::exists(dir / "mine.partial/notes"));

  // In use: another staging directory of the same name is alive (its lock is held).
  StagingDirectory first(dir / "busy", Overwrite::kRefuse);
  dir.write("busy.partial/file", "data");
  EXPECT_THROW(StagingDirectory(dir / "busy", Overwrite::kRefuse), UsageError);
  first.commit();
  EXPECT_TRUE(fs::exists(dir / "busy/file"));
}

TEST(StagingDirectory, RefusesPathsThatNameNoNewDirectory) {
  for (const std::string path : {".", "./", "..", "sub/..", "/"}) {
    EXPECT_THROW(StagingDirectory(path, Overwrite::kReplace), UsageError) << path;
  }
}

}  // namespace
}  // namespace albion
