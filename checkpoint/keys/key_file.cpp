// File: checkpoint/keys/key_file.cpp
#include "checkpoint/keys/key_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>

#include "checkpoint/io/atomic_file.h"
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

[[noreturn]] void throw_exists(const std::filesystem::path& path) {
  throw UsageError(str_cat("key file '", path.string(),
                           "' already exists; refusing to overwrite it (checkpoints wrapped with "
                           "that key would become unreadable); pass --force to replace it"));
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
  struct stat existing {};
  if (::lstat(path.c_str(), &existing) == 0) {
    if (overwrite == KeyFileOverwrite::kRefuse) throw_exists(path);
    ALBION_CHECK_AS(UsageError, S_ISREG(existing.st_mode), "'", path.string(),
                    "' exists and is not a regular file; refusing to replace it with a key");
  }

  const SecretBytes key = SecretBytes::random(kKeyFileBytes);
  std::string id = key_id_of(key);
  write_file_atomically(path, key.view(),
                        overwrite == KeyFileOverwrite::kReplace ? ExistingFile::kReplace : ExistingFile::kRefuse);
  return id;
}

}  // namespace albion::checkpoint
