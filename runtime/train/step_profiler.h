// File: runtime/train/step_profiler.h
// Records a window of training steps with torch's profiler (Kineto: host operators, and on a GPU
// every kernel and copy through CUPTI), then writes, per rank, into run.dir/profile/:
//   rank<R>.pt.trace.json  a Chrome trace (Perfetto, chrome://tracing), a marker per step
//   rank<R>.summary.txt    where the step's time went (profile_summary.h), also logged in short
// No tensor values or shapes: operator and kernel names with their timings, kernels' grid and
// block sizes, copy sizes, process and thread ids, the trace's path.
#pragma once

#include <ATen/record_function.h>

#include <cstdint>
#include <filesystem>
#include <memory>

#include "runtime/config/recipe.h"

namespace torch::autograd::profiler {
struct ProfilerResult;
}

namespace albion::train {

class StepProfiler {
 public:
  // `last_step` is the run's last step (from 0): a window past it is said to record nothing.
  StepProfiler(const config::ProfileConfig& config, std::filesystem::path run_dir, int rank,
               const at::Device& device, std::int64_t last_step);
  ~StepProfiler();
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  // Around each step (counted from 0): recording starts at the window's first step, and the files
  // are written after its last, or at `stop()` when the run ends inside the window. A failure to
  // record or write is a warning: training goes on.
  void begin_step(std::int64_t step);
  void end_step(std::int64_t step);
  void stop();

 private:
  void write(torch::autograd::profiler::ProfilerResult& result) const;

  std::int64_t first_ = 0;  // the window, steps counted from 0
  std::int64_t end_ = 0;    // one past its last step; 0 when profiling is off
  std::filesystem::path dir_;
  int rank_ = 0;
  at::Device device_;
  bool recording_ = false;
  bool done_ = false;  // written, or given up: once per run
  std::unique_ptr<at::RecordFunction> step_marker_;
};

}  // namespace albion::train
