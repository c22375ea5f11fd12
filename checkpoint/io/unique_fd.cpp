// File: checkpoint/io/unique_fd.cpp
#include "checkpoint/io/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "runtime/base/check.h"

namespace albion::checkpoint {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::close(const std::filesystem::path& path) {
  const int fd = release();
  if (fd >= 0 && ::close(fd) != 0) {
    throw SystemError(str_cat("close('", path.string(), "') failed: ", errno_text(errno)));
  }
}

std::string errno_text(int error) {
  char buffer[256] = {};
  return strerror_r(error, buffer, sizeof buffer);  // GNU strerror_r returns the text
}

void write_all(int fd, const void* data, std::size_t size, const std::filesystem::path& path) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw SystemError(str_cat("write('", path.string(), "') failed: ", errno_text(errno)));
    }
    bytes += written;
    size -= static_cast<std::size_t>(written);
  }
}

void pwrite_all(int fd, const void* data, std::size_t size, std::uint64_t offset,
                const std::filesystem::path& path) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t written = ::pwrite(fd, bytes, size, static_cast<off_t>(offset));
    if (written < 0) {
      if (errno == EINTR) continue;
      throw SystemError(str_cat("pwrite('", path.string(), "') failed: ", errno_text(errno)));
    }
    bytes += written;
    offset += static_cast<std::uint64_t>(written);
    size -= static_cast<std::size_t>(written);
  }
}

void pread_all(int fd, void* data, std::size_t size, std::uint64_t offset, const std::filesystem::path& path) {
  char* bytes = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t got = ::pread(fd, bytes, size, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      throw SystemError(str_cat("pread('", path.string(), "') failed: ",
                                got == 0 ? std::string("unexpected end of file") : errno_text(errno)));
    }
    bytes += got;
    offset += static_cast<std::uint64_t>(got);
    size -= static_cast<std::size_t>(got);
  }
}

void fsync_or_throw(int fd, const std::filesystem::path& path) {
  if (::fsync(fd) != 0) {
    throw SystemError(str_cat("fsync('", path.string(), "') failed: ", errno_text(errno)));
  }
}

void fsync_directory(const std::filesystem::path& directory) {
  const std::filesystem::path dir = directory.empty() ? "." : directory;
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) {
    throw SystemError(str_cat("open directory '", dir.string(), "' failed: ", errno_text(errno)));
  }
  fsync_or_throw(fd.get(), dir);
  fd.close(dir);
}

}  // namespace albion::checkpoint
