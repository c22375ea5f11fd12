// File: checkpoint/io/atomic_file.cpp
#include "checkpoint/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <unistd.h>

#include "checkpoint/io/unique_fd.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {

namespace fs = std::filesystem;

namespace {

// Removes the partial file unless the rename consumed it.
class PartialFileGuard {
 public:
  explicit PartialFileGuard(fs::path path) : path_(std::move(path)) {}
  PartialFileGuard(const PartialFileGuard&) = delete;
  PartialFileGuard& operator=(const PartialFileGuard&) = delete;
  ~PartialFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void dismiss() { path_.clear(); }

 private:
  fs::path path_;
};

[[noreturn]] void throw_exists(const fs::path& path) {
  throw UsageError(str_cat("'", path.string(), "' already exists; refusing to overwrite it"));
}

// rename() that never replaces an existing `to` (RENAME_NOREPLACE; link+unlink where the file
// system lacks it). Both are atomic: a file created at `to` meanwhile is never clobbered.
void rename_no_replace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return;
  if (errno == EEXIST) throw_exists(to);
  if (errno != EINVAL && errno != ENOSYS) {
    throw SystemError(str_cat("rename('", from.string(), "', '", to.string(), "') failed: ", errno_text(errno)));
  }
  if (::link(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST) throw_exists(to);
    throw SystemError(str_cat("link('", from.string(), "', '", to.string(), "') failed: ", errno_text(errno)));
  }
  ::unlink(from.c_str());
}

}  // namespace

void write_file_atomically(const fs::path& path, std::span<const std::uint8_t> bytes, ExistingFile existing) {
  const std::span<const std::uint8_t> pieces[] = {bytes};
  write_file_atomically(path, pieces, existing);
}

void write_file_atomically(const fs::path& path, std::span<const std::span<const std::uint8_t>> pieces,
                           ExistingFile existing) {
  ALBION_CHECK_AS(UsageError, path.has_filename(), "'", path.string(), "' does not name a file");
  // symlink_status: a dangling symlink is there too (the final rename would refuse it anyway).
  if (existing == ExistingFile::kRefuse && fs::exists(fs::symlink_status(path))) throw_exists(path);
  const fs::path partial = path.string() + ".partial";
  ::unlink(partial.c_str());  // left by a crash: nobody reads .partial files
  UniqueFd fd(::open(partial.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    const int error = errno;
    // A directory that is missing, not a directory, or not writable is the caller's path to fix.
    const bool usage = error == ENOENT || error == ENOTDIR || error == EACCES || error == EROFS;
    const std::string message = str_cat("cannot create '", partial.string(), "': ", errno_text(error));
    if (usage) throw UsageError(message);
    throw SystemError(message);
  }
  PartialFileGuard guard(partial);
  // The umask can only clear bits of 0600; fchmod makes the mode exact even under an odd umask.
  ALBION_CHECK_AS(SystemError, ::fchmod(fd.get(), 0600) == 0, "fchmod('", partial.string(), "') failed: ",
                  errno_text(errno));
  for (const std::span<const std::uint8_t> piece : pieces) write_all(fd.get(), piece.data(), piece.size(), partial);
  fsync_or_throw(fd.get(), partial);
  fd.close(partial);
  if (existing == ExistingFile::kRefuse) {
    rename_no_replace(partial, path);
  } else if (::rename(partial.c_str(), path.c_str()) != 0) {
    throw SystemError(str_cat("rename('", partial.string(), "', '", path.string(), "') failed: ", errno_text(errno)));
  }
  guard.dismiss();
  fsync_directory(path.has_parent_path() ? path.parent_path() : fs::path("."));
}

void write_file_atomically(const fs::path& path, std::string_view text, ExistingFile existing) {
  write_file_atomically(path, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                        existing);
}

}  // namespace albion::checkpoint
