// File: runtime/base/staging_directory.h
// Builds a directory under a temporary name and publishes it atomically:
//
//   StagingDirectory staging("out/tokens", Overwrite::kRefuse);  // creates out/tokens.partial
//   write files into staging.path() ...
//   staging.commit();  // fsync every file and the directory, rename to out/tokens, fsync parent
//
// Until commit() the final name does not exist (or keeps its old contents), so a crash or kill
// never leaves a half-written directory under the final name. A leftover `.partial` from an
// interrupted run is removed when the next one starts. Destroying an uncommitted staging
// directory removes it.
#pragma once

#include <string>

namespace albion {

enum class Overwrite { kRefuse, kReplace };

class StagingDirectory {
 public:
  // Throws UsageError if `final_path` exists and `overwrite` is kRefuse, or cannot be created.
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
  bool committed_ = false;
};

// fsync a file or directory by path; throws SystemError on failure.
void fsync_path(const std::string& path);

}  // namespace albion
