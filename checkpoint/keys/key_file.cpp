// File: checkpoint/keys/key_file.cpp
#include "checkpoint/keys/key_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>

#include "checkpoint/crypto/hex.h"
#include "checkpoint/io/unique_fd.h"
#include "checkpoint/keys/key_id.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

std::string mode_text(mode_t mode) {
  std::array<char, 8> text{};
  std::snprintf(text.data(), text.size(), "%04o", static_cast<unsigned>(mode & 07777));
  return text.data();
}

// Removes the temporary file unless the rename consumed it.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::filesystem::path path) : path_(std::move(path)) {}
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void dismiss() { path_.clear(); }

 private:
  std::filesystem::path path_;
};

[[noreturn]] void throw_exists(const std::filesystem::path& path) {
  throw UsageError(str_cat("key file '", path.string(),
                           "' already exists; refusing to overwrite it (checkpoints wrapped with "
                           "that key would become unreadable); pass --force to replace it"));
}

// rename() that never replaces an existing `to` (RENAME_NOREPLACE; link+unlink where the file
// system lacks it). Both are atomic: a file created at `to` meanwhile is never clobbered.
void rename_no_replace(const std::filesystem::path& from, const std::filesystem::path& to) {
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

SecretBytes read_key_file(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!fd.valid()) {
    const int error = errno;
    throw UsageError(str_cat("cannot open key file '", path.string(), "': ", errno_text(error)));
  }
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) {
    throw SystemError(str_cat("fstat('", path.string(), "') failed: ", errno_text(errno)));
  }
  ALBION_CHECK_AS(UsageError, S_ISREG(info.st_mode), "key file '", path.string(), "' is not a regular file");
  ALBION_CHECK_AS(UsageError, (info.st_mode & (S_IRWXG | S_IRWXO)) == 0, "key file '", path.string(),
                  "' has mode ", mode_text(info.st_mode),
                  ", so group or others can access it; run 'chmod 600 ", path.string(),
                  "' (and consider the key exposed if others could read it)");
  ALBION_CHECK_AS(UsageError, info.st_size == static_cast<off_t>(kKeyFileBytes), "key file '",
                  path.string(), "' has ", info.st_size, " bytes; a key file holds exactly ",
                  kKeyFileBytes, " raw bytes (create one with 'albion keys generate --out FILE')");
  // One byte more than a key, so a file that grew after fstat is caught too.
  SecretBytes key(kKeyFileBytes + 1);
  std::size_t total = 0;
  while (total < key.size()) {
    const ssize_t got = ::read(fd.get(), key.data() + total, key.size() - total);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw SystemError(str_cat("read('", path.string(), "') failed: ", errno_text(errno)));
    if (got == 0) break;
    total += static_cast<std::size_t>(got);
  }
  ALBION_CHECK_AS(UsageError, total == kKeyFileBytes, "key file '", path.string(),
                  "' changed size while being read (expected ", kKeyFileBytes, " bytes)");
  return SecretBytes::copy_of(key.view().first(kKeyFileBytes));
}

std::string generate_key_file(const std::filesystem::path& path, KeyFileOverwrite overwrite) {
  ALBION_CHECK_AS(UsageError, !path.empty() && path.has_filename(), "key file path '", path.string(),
                  "' does not name a file");
  const std::filesystem::path directory = path.has_parent_path() ? path.parent_path() : ".";
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0) {
    if (overwrite == KeyFileOverwrite::kRefuse) throw_exists(path);
    ALBION_CHECK_AS(UsageError, S_ISREG(existing.st_mode), "'", path.string(),
                    "' exists and is not a regular file; refusing to replace it with a key");
  }

  const std::filesystem::path temp =
      directory / str_cat(".", path.filename().string(), ".tmp-", to_hex(SecretBytes::random(6).view()));
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) {
    const int error = errno;
    throw UsageError(str_cat("cannot create key file in directory '", directory.string(), "': ",
                             errno_text(error)));
  }
  TempFileGuard guard(temp);
  // The umask can only clear bits of 0600; fchmod makes the mode exact even under an odd umask.
  if (::fchmod(fd.get(), 0600) != 0) {
    throw SystemError(str_cat("fchmod('", temp.string(), "') failed: ", errno_text(errno)));
  }
  const SecretBytes key = SecretBytes::random(kKeyFileBytes);
  write_all(fd.get(), key.data(), key.size(), temp);
  fsync_or_throw(fd.get(), temp);
  fd.close(temp);
  std::string id = key_id_of(key);

  if (overwrite == KeyFileOverwrite::kReplace) {
    if (::rename(temp.c_str(), path.c_str()) != 0) {
      throw SystemError(str_cat("rename('", temp.string(), "', '", path.string(), "') failed: ",
                                errno_text(errno)));
    }
  } else {
    rename_no_replace(temp, path);
  }
  guard.dismiss();
  fsync_directory(directory);
  return id;
}

}  // namespace albion::checkpoint
