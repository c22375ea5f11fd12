// File: checkpoint/io/hdf5_io.h
// RAII for HDF5 identifiers, a checked-call macro, and the few HDF5 operations token shards use:
// scalar attributes and 1-D contiguous datasets (contiguous so readers can map them). Token shards
// (runtime/data/) and checkpoint shards use it. Every HDF5 call that can fail goes through
// ALBION_H5_CHECK, which turns a negative return into an albion::Error naming the call and file;
// HDF5's own error stack printing is switched off (silence_hdf5_errors) so users see one line.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>

#include "runtime/base/check.h"

namespace albion::checkpoint {

// Owns one hid_t and closes it with the matching H5*close function.
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  ~H5Handle() { reset(); }
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  H5Handle(H5Handle&& other) noexcept
      : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  H5Handle& operator=(H5Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  hid_t get() const { return id_; }
  // Gives up ownership (for a caller that closes it and checks the result).
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }
  void reset() {
    if (id_ >= 0 && closer_ != nullptr) closer_(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Called once before any HDF5 use: HDF5 would otherwise print its error stack to stderr.
void silence_hdf5_errors();

// Scalar attributes on `object`; `path` names the file in messages. Readers throw
// IntegrityError for a missing or malformed attribute.
void write_string_attribute(hid_t object, const char* name, const std::string& value, const std::string& path);
void write_integer_attribute(hid_t object, const char* name, std::int64_t value, const std::string& path);
std::string read_string_attribute(hid_t object, const char* name, const std::string& path);
std::int64_t read_integer_attribute(hid_t object, const char* name, const std::string& path);

// A 1-D dataset with contiguous layout, allocated early (so H5Dget_offset knows where its bytes
// go), no filters, never filled: the caller writes all of it.
H5Handle create_contiguous_dataset(hid_t file, const char* name, hid_t stored_type, std::uint64_t count,
                                   const std::string& path);
// The same, written from `data` at once.
void write_contiguous_vector(hid_t file, const char* name, hid_t stored_type, hid_t memory_type,
                             const void* data, std::uint64_t count, const std::string& path);

struct ContiguousDataset {
  std::uint64_t count = 0;
  haddr_t offset = HADDR_UNDEF;  // byte offset of element 0 in the file
};
// Opens a 1-D dataset, checks its stored type and layout, returns its length and file offset.
ContiguousDataset locate_contiguous(hid_t file, const char* name, hid_t expected_type, const std::string& path);

// A whole file mapped read-only (shared page cache); unmapped on destruction.
class MappedFile {
 public:
  enum class Access { kRandom, kSequential };  // the read-ahead hint
  explicit MappedFile(const std::string& path, Access access = Access::kRandom);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  // True when [offset, offset + bytes) lies inside the file.
  bool contains(std::uint64_t offset, std::uint64_t bytes) const { return offset <= size_ && bytes <= size_ - offset; }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace albion::checkpoint

// `what` names the file or object, for the message.
#define ALBION_H5_CHECK(call, ErrorType, what)                                           \
  [&] {                                                                                  \
    auto albion_h5_result_ = (call);                                                     \
    if (albion_h5_result_ < 0) throw ::albion::ErrorType(::albion::str_cat(what, ": HDF5 call " #call " failed")); \
    return albion_h5_result_;                                                            \
  }()
