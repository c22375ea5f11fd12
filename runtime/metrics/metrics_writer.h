// File: runtime/metrics/metrics_writer.h
// Where training metrics go: one JSON object per record appended to RUN_DIR/metrics.jsonl
// (flushed per line, so a crash loses nothing written), and the same scalars to TensorBoard.
// Keys of step records: step, loss, lr, grad_norm, tokens_per_s, mfu, elapsed_s,
// peak_memory_bytes; evaluation records: step, val_loss; a run resumed from a checkpoint first
// writes {"step": N, "event": "resumed"}: records of step N or later above it are superseded. A
// value that does not apply (mfu on a CPU of unknown peak rate) is written as JSON null and
// skipped in TensorBoard.
#pragma once

#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/metrics/tensorboard_writer.h"

namespace albion::metrics {

using Scalars = std::vector<std::pair<std::string, std::optional<double>>>;

class MetricsWriter {
 public:
  MetricsWriter(const std::string& run_directory, bool tensorboard);
  void write(std::int64_t step, const Scalars& scalars);
  // Marks that training continues at `step` (from a checkpoint): see above; TensorBoard drops the
  // superseded events itself.
  void mark_resumed(std::int64_t step);

 private:
  std::ofstream jsonl_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

}  // namespace albion::metrics
