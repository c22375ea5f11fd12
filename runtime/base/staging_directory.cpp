// File: runtime/base/staging_directory.cpp
#include "runtime/base/staging_directory.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/base/remove_tree.h"

namespace albion {

namespace fs = std::filesystem;

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ALBION_CHECK_AS(SystemError, fd >= 0, path, ": cannot open for fsync: ", std::strerror(errno));
  int status = ::fsync(fd);
  int error = errno;
  ::close(fd);
  ALBION_CHECK_AS(SystemError, status == 0, path, ": fsync failed: ", std::strerror(error));
}

StagingDirectory::StagingDirectory(std::string final_path, Overwrite overwrite)
    : final_path_(fs::path(std::move(final_path)).lexically_normal().string()),
      overwrite_(overwrite) {
  while (final_path_.size() > 1 && final_path_.back() == '/') final_path_.pop_back();
  staging_path_ = final_path_ + ".partial";
  ALBION_CHECK_AS(UsageError, overwrite == Overwrite::kReplace || !fs::exists(final_path_),
                  final_path_, ": already exists (pass --overwrite to replace it)");
  std::error_code error;
  if (fs::exists(staging_path_)) {
    log::warning("removing ", staging_path_, " left by an interrupted run");
    ALBION_CHECK_AS(UsageError, remove_tree(staging_path_), staging_path_, ": cannot remove");
  }
  fs::path parent = fs::path(final_path_).parent_path();
  if (!parent.empty()) fs::create_directories(parent, error);
  ALBION_CHECK_AS(UsageError, !error, parent.string(), ": cannot create: ", error.message());
  fs::create_directory(staging_path_, error);
  ALBION_CHECK_AS(UsageError, !error, staging_path_, ": cannot create: ", error.message());
}

StagingDirectory::~StagingDirectory() {
  if (committed_) return;
  remove_tree(staging_path_);
}

void StagingDirectory::commit() {
  ALBION_CHECK(!committed_, "staging directory committed twice");
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(staging_path_)) {
    if (entry.is_regular_file()) fsync_path(entry.path().string());
  }
  fsync_path(staging_path_);
  std::string replaced;
  if (fs::exists(final_path_)) {
    // Move the old one aside first: rename() cannot replace a non-empty directory.
    replaced = final_path_ + ".replaced";
    remove_tree(replaced);
    fs::rename(final_path_, replaced);
  }
  fs::rename(staging_path_, final_path_);
  committed_ = true;
  fs::path parent = fs::path(final_path_).parent_path();
  fsync_path(parent.empty() ? std::string(".") : parent.string());
  if (!replaced.empty()) remove_tree(replaced);
}

}  // namespace albion
