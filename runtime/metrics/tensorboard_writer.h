// File: runtime/metrics/tensorboard_writer.h
// Writes scalar summaries as a TensorBoard event file (events.out.tfevents.<time>.<host>) that the
// real `tensorboard` reader opens: TFRecord framing (length, masked CRC-32C of the length, the
// record, masked CRC-32C of the record) around hand-encoded `Event` protocol buffers (wall_time,
// step, file_version, summary { value { tag, simple_value } } or session_log { status }). No
// protobuf dependency: the few fields we write are encoded in tensorboard_writer.cpp.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

namespace albion::metrics {

class TensorBoardWriter {
 public:
  // Creates the event file in `directory` (which must exist).
  explicit TensorBoardWriter(const std::string& directory);

  void add_scalar(std::string_view tag, double value, std::int64_t step, double wall_time);
  // SessionLog START at `step`: TensorBoard drops every event of an earlier session at `step` or
  // later, so a run resumed from a checkpoint does not show the steps it redoes twice.
  void add_session_start(std::int64_t step, double wall_time);
  void flush();
  const std::string& path() const { return path_; }

 private:
  void write_record(const std::string& event);

  std::string path_;
  std::ofstream file_;
};

// CRC-32C (Castagnoli), as TFRecord uses; exposed for tests.
std::uint32_t crc32c(std::string_view bytes);

}  // namespace albion::metrics
