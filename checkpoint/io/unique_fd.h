// File: checkpoint/io/unique_fd.h
// UniqueFd owns a POSIX file descriptor and closes it exactly once; plus the few checked POSIX
// helpers key files, checkpoint shards and the audit log need (write everything, positioned
// reads and writes, fsync a file or its directory).
// Failures throw SystemError naming the path and strerror(errno).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace albion::checkpoint {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();
  // Closes now and reports a failed close (which can carry a delayed write error).
  void close(const std::filesystem::path& path);

 private:
  int fd_ = -1;
};

// "No such file or directory" for the current errno.
std::string errno_text(int error);

// Writes all of `size` bytes (retrying short writes and EINTR).
void write_all(int fd, const void* data, std::size_t size, const std::filesystem::path& path);
// Writes / reads exactly `size` bytes at `offset` (retrying short transfers and EINTR).
void pwrite_all(int fd, const void* data, std::size_t size, std::uint64_t offset,
                const std::filesystem::path& path);
void pread_all(int fd, void* data, std::size_t size, std::uint64_t offset, const std::filesystem::path& path);
void fsync_or_throw(int fd, const std::filesystem::path& path);
// Makes a rename or create inside `directory` durable.
void fsync_directory(const std::filesystem::path& directory);

}  // namespace albion::checkpoint
