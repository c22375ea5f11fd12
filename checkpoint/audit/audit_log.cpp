// File: checkpoint/audit/audit_log.cpp
#include "checkpoint/audit/audit_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "checkpoint/crypto/sha256.h"
#include "checkpoint/io/unique_fd.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

std::string read_at(int fd, off_t offset, std::size_t size, const std::filesystem::path& path) {
  std::string bytes(size, '\0');
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::pread(fd, bytes.data() + done, size - done, offset + static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw SystemError(str_cat("read('", path.string(), "') failed: ", errno_text(errno)));
    done += static_cast<std::size_t>(got);
  }
  return bytes;
}

// The SHA-256 of the log's last line (genesis for an empty log). Reads backwards from the end in
// blocks, so appending costs the same however long the log grows.
std::string last_line_hash(int fd, const std::filesystem::path& path) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    throw SystemError(str_cat("fstat('", path.string(), "') failed: ", errno_text(errno)));
  }
  const off_t size = info.st_size;
  if (size == 0) return std::string(kAuditGenesis);
  ALBION_CHECK_AS(IntegrityError, read_at(fd, size - 1, 1, path) == "\n", "audit log '",
                  path.string(), "' ends in a partial record; refusing to append (run 'albion ckpt audit ",
                  path.string(), "')");
  constexpr off_t kBlock = 4096;
  std::string tail;  // the bytes after the final line's start, growing backwards
  off_t end = size - 1;  // the final newline is not part of the line
  while (end > 0) {
    const off_t begin = end > kBlock ? end - kBlock : 0;
    std::string block = read_at(fd, begin, static_cast<std::size_t>(end - begin), path);
    const std::size_t newline = block.rfind('\n');
    if (newline != std::string::npos) {
      tail = block.substr(newline + 1) + tail;
      break;
    }
    tail = block + tail;
    end = begin;
  }
  return sha256_hex(tail);
}

}  // namespace

AuditLog::AuditLog(std::filesystem::path path, AuditIdentity identity)
    : path_(std::move(path)), identity_(std::move(identity)) {}

std::string AuditLog::append(const AuditEvent& event) {
  UniqueFd fd(::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    const int error = errno;
    throw UsageError(str_cat("cannot open audit log '", path_.string(), "': ", errno_text(error)));
  }
  // Another process may be appending: hold the lock from reading the head to the fsync.
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) throw SystemError(str_cat("flock('", path_.string(), "') failed: ", errno_text(errno)));
  }
  const std::string prev = last_line_hash(fd.get(), path_);
  const std::string line = audit_record_line(prev, utc_timestamp_now(), identity_, event);
  const std::string record = line + "\n";
  write_all(fd.get(), record.data(), record.size(), path_);
  fsync_or_throw(fd.get(), path_);
  fd.close(path_);  // releases the lock
  return sha256_hex(line);
}

}  // namespace albion::checkpoint
