// File: runtime/base/staging_directory.cpp
#include "runtime/base/staging_directory.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/base/remove_tree.h"

namespace albion {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMarker = ".albion-staging";

// Removes `staging` if it is a leftover of an interrupted Albion run; refuses anything else.
void remove_leftover(const std::string& staging) {
  const std::string marker = staging + "/" + kMarker;
  const int fd = ::open(marker.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  // No marker: a directory albion did not make, or one whose commit a crash cut short after the
  // marker was removed (it then holds the finished output). Either way, not albion's to delete.
  ALBION_CHECK_AS(UsageError, fd >= 0, staging,
                  ": exists without albion's staging marker (not made by albion, or a commit cut short by a "
                  "crash: check its contents); move it away or remove it");
  const bool unlocked = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  if (unlocked) {
    log::warning("removing ", staging, " left by an interrupted run");
    const bool removed = remove_tree(staging);
    ::close(fd);
    ALBION_CHECK_AS(UsageError, removed, staging, ": cannot remove");
    return;
  }
  ::close(fd);
  throw UsageError(str_cat(staging, ": another albion process is writing it; wait for it to end"));
}

}  // namespace

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
  const std::string name = fs::path(final_path_).filename().string();
  ALBION_CHECK_AS(UsageError, !name.empty() && name != "." && name != "..", "'", final_path_,
                  "' names no new directory: give a path such as out/dataset");
  staging_path_ = final_path_ + ".partial";
  ALBION_CHECK_AS(UsageError, overwrite == Overwrite::kReplace || !fs::exists(final_path_),
                  final_path_, ": already exists (pass --overwrite to replace it)");
  std::error_code error;
  if (fs::exists(fs::symlink_status(staging_path_))) remove_leftover(staging_path_);
  fs::path parent = fs::path(final_path_).parent_path();
  if (!parent.empty()) fs::create_directories(parent, error);
  ALBION_CHECK_AS(UsageError, !error, parent.string(), ": cannot create: ", error.message());
  // create_directory reports an existing path as success: a racing run must not share it.
  ALBION_CHECK_AS(UsageError, ::mkdir(staging_path_.c_str(), 0777) == 0, staging_path_, ": cannot create: ",
                  std::strerror(errno));
  const std::string marker = staging_path_ + "/" + kMarker;
  marker_fd_ = ::open(marker.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (marker_fd_ < 0 || ::flock(marker_fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string reason = std::strerror(errno);
    if (marker_fd_ >= 0) ::close(marker_fd_);
    marker_fd_ = -1;
    remove_tree(staging_path_);
    throw UsageError(str_cat(marker, ": cannot create and lock: ", reason));
  }
}

StagingDirectory::~StagingDirectory() {
  if (!committed_) remove_tree(staging_path_);
  if (marker_fd_ >= 0) ::close(marker_fd_);
}

void StagingDirectory::commit() {
  ALBION_CHECK(!committed_, "staging directory committed twice");
  // The marker goes first, so the published directory holds only what the caller wrote; the
  // lock stays held (on the open file) until the rename is done.
  const std::string marker = staging_path_ + "/" + kMarker;
  ALBION_CHECK_AS(SystemError, ::unlink(marker.c_str()) == 0, marker, ": cannot remove: ", std::strerror(errno));
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(staging_path_)) {
    if (entry.is_regular_file()) fsync_path(entry.path().string());
  }
  fsync_path(staging_path_);
  std::string replaced;  // where the old directory is after the swap, to be removed
  if (fs::exists(final_path_)) {
    // rename() cannot replace a non-empty directory: swap the two instead.
    if (::renameat2(AT_FDCWD, staging_path_.c_str(), AT_FDCWD, final_path_.c_str(), RENAME_EXCHANGE) == 0) {
      replaced = staging_path_;
    } else {
      // A filesystem without RENAME_EXCHANGE: move the old one aside under a name nobody uses.
      ALBION_CHECK_AS(SystemError, errno == EINVAL || errno == ENOSYS, "cannot swap ", staging_path_,
                      " with ", final_path_, ": ", std::strerror(errno));
      replaced = final_path_ + ".replaced";
      ALBION_CHECK_AS(UsageError, !fs::exists(fs::symlink_status(replaced)), replaced,
                      ": exists; move it away so that ", final_path_, " can be replaced");
      fs::rename(final_path_, replaced);
      fs::rename(staging_path_, final_path_);
    }
  } else {
    fs::rename(staging_path_, final_path_);
  }
  committed_ = true;
  fs::path parent = fs::path(final_path_).parent_path();
  fsync_path(parent.empty() ? std::string(".") : parent.string());
  if (!replaced.empty()) remove_tree(replaced);
}

}  // namespace albion
