// File: runtime/metrics/tensorboard_writer.cpp
#include "runtime/metrics/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>

#include "runtime/base/check.h"

namespace albion::metrics {
namespace {

constexpr std::array<std::uint32_t, 256> make_crc32c_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
    table[i] = crc;
  }
  return table;
}
constexpr auto kCrc32cTable = make_crc32c_table();

std::uint32_t masked_crc(std::string_view bytes) {
  const std::uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// Protocol-buffer wire format for the few field types an Event needs.
void put_varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}
template <typename T>
void put_little_endian(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // x86-64 and aarch64 are little-endian
  out.append(bytes, sizeof(T));
}
void put_length_delimited(std::string& out, int field, std::string_view bytes) {
  put_varint(out, static_cast<std::uint64_t>(field) << 3 | 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}

std::string event_header(double wall_time, std::int64_t step) {
  std::string event;
  put_varint(event, 1 << 3 | 1);  // wall_time: double
  put_little_endian(event, wall_time);
  put_varint(event, 2 << 3 | 0);  // step: int64
  put_varint(event, static_cast<std::uint64_t>(step));
  return event;
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::uint32_t crc32c(std::string_view bytes) {
  std::uint32_t crc = 0xffffffffu;
  for (unsigned char c : bytes) crc = kCrc32cTable[(crc ^ c) & 0xff] ^ (crc >> 8);
  return crc ^ 0xffffffffu;
}

TensorBoardWriter::TensorBoardWriter(const std::string& directory) {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const double now = now_seconds();
  path_ = str_cat(directory, "/events.out.tfevents.", static_cast<std::int64_t>(now), ".", host);
  file_.open(path_, std::ios::binary | std::ios::app);
  ALBION_CHECK_AS(UsageError, file_.good(), path_, ": cannot create TensorBoard event file");
  std::string event = event_header(now, 0);
  put_length_delimited(event, 3, "brain.Event:2");  // file_version
  write_record(event);
  flush();
}

void TensorBoardWriter::add_scalar(std::string_view tag, double value, std::int64_t step,
                                   double wall_time) {
  std::string summary_value;
  put_length_delimited(summary_value, 1, tag);
  put_varint(summary_value, 2 << 3 | 5);  // simple_value: float
  put_little_endian(summary_value, static_cast<float>(value));
  std::string summary;
  put_length_delimited(summary, 1, summary_value);
  std::string event = event_header(wall_time, step);
  put_length_delimited(event, 5, summary);
  write_record(event);
}

void TensorBoardWriter::add_session_start(std::int64_t step, double wall_time) {
  std::string session_log;
  put_varint(session_log, 1 << 3 | 0);  // status: START
  put_varint(session_log, 1);
  std::string event = event_header(wall_time, step);
  put_length_delimited(event, 7, session_log);
  write_record(event);
}

void TensorBoardWriter::write_record(const std::string& event) {
  std::string length;
  put_little_endian(length, static_cast<std::uint64_t>(event.size()));
  std::string record = length;
  put_little_endian(record, masked_crc(length));
  record += event;
  put_little_endian(record, masked_crc(event));
  file_.write(record.data(), static_cast<std::streamsize>(record.size()));
}

void TensorBoardWriter::flush() { file_.flush(); }

}  // namespace albion::metrics
