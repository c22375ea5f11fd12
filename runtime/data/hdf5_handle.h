// File: runtime/data/hdf5_handle.h
// RAII for HDF5 identifiers and a checked-call macro. Every HDF5 call that can fail goes through
// ALBION_H5_CHECK, which turns a negative return into an albion::Error naming the call and file;
// HDF5's own error stack printing is switched off (silence_hdf5_errors) so users see one line.
#pragma once

#include <hdf5.h>

#include <string>
#include <utility>

#include "runtime/base/check.h"

namespace albion::data {

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

}  // namespace albion::data

// `what` names the file or object, for the message.
#define ALBION_H5_CHECK(call, ErrorType, what)                                           \
  [&] {                                                                                  \
    auto albion_h5_result_ = (call);                                                     \
    if (albion_h5_result_ < 0) throw ::albion::ErrorType(::albion::str_cat(what, ": HDF5 call " #call " failed")); \
    return albion_h5_result_;                                                            \
  }()
