// File: runtime/base/staging_directory.h
// Builds a directory under a temporary name and publishes it atomically:
//
//   StagingDirectory staging("out/tokens", Overwrite::kRefuse);  // creates out/tokens.partial
//   write files into staging.path() ...
//   staging.commit();  // fsync every file and the directory, rename to out/tokens, fsync parent
//
// Until commit() the final name does not exist (or keeps its old contents), so a crash or kill
// never leaves a half-written directory under the final name. Destroying an uncommitted staging
// directory removes it.
//
// Only Albion's own leftovers are ever removed. A staging directory holds a marker file, locked
// (flock) while its process lives:
//   - a `.partial` with an unlocked marker was left by an interrupted run: removed, with a warning;
//   - one whose marker is locked is being written by another process: UsageError;
//   - one without a marker is not Albion's: UsageError, untouched.
// A replaced directory is swapped out in one step (renameat2 RENAME_EXCHANGE) and then removed, so
// no second name (such as `.replaced`) is ever taken over.
#pragma once

#include <string>

namespace albion {

enum class Overwrite { kRefuse, kReplace };

class StagingDirectory {
 public:
  // Throws UsageError if `final_path` exists and `overwrite` is kRefuse, names no directory ("."
  // or ".."), has a `.partial` that is not a removable leftover (above), or cannot be created.
  StagingDirectory(std::string final_path, Overwrite overwrite);
  ~StagingDirectory();
  StagingDirectory(const StagingDirectory&) = delete;
  StagingDirectory& operator=(const StagingDirectory&) = delete;

  const std::string& path() const { return staging_path_; }
  void commit();

 private:
  std::string final_path_;
  std::string staging_path_;
  Overwrite overwrite_;
  int marker_fd_ = -1;  // holds the flock that tells other processes this directory is in use
  bool committed_ = false;
};

// fsync a file or directory by path; throws SystemError on failure.
void fsync_path(const std::string& path);

}  // namespace albion
