// File: runtime/metrics/metrics_writer.cpp
#include "runtime/metrics/metrics_writer.h"

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "runtime/base/check.h"

namespace albion::metrics {

MetricsWriter::MetricsWriter(const std::string& run_directory, bool tensorboard) {
  const std::string path = run_directory + "/metrics.jsonl";
  jsonl_.open(path, std::ios::app);
  ALBION_CHECK_AS(UsageError, jsonl_.good(), path, ": cannot open for writing");
  if (tensorboard) tensorboard_ = std::make_unique<TensorBoardWriter>(run_directory);
}

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}
}  // namespace

void MetricsWriter::mark_resumed(std::int64_t step) {
  nlohmann::ordered_json record;
  record["step"] = step;
  record["event"] = "resumed";
  jsonl_ << record.dump() << "\n";
  jsonl_.flush();
  if (tensorboard_) {
    tensorboard_->add_session_start(step, now_seconds());
    tensorboard_->flush();
  }
}

void MetricsWriter::write(std::int64_t step, const Scalars& scalars) {
  const double wall_time = now_seconds();
  nlohmann::ordered_json record;
  record["step"] = step;
  for (const auto& [name, value] : scalars) {
    // JSON has no NaN or infinity: write null, so readers never choke on the file.
    record[name] = value && std::isfinite(*value) ? nlohmann::ordered_json(*value) : nullptr;
    if (tensorboard_ && value) tensorboard_->add_scalar(name, *value, step, wall_time);
  }
  jsonl_ << record.dump() << "\n";
  jsonl_.flush();
  if (tensorboard_) tensorboard_->flush();
}

}  // namespace albion::metrics
