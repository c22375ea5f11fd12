// File: runtime/train/step_profiler.cpp
#include "runtime/train/step_profiler.h"

#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <kineto/ActivityType.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstdlib>
#include <set>
#include <sstream>

#include "checkpoint/io/atomic_file.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/train/profile_summary.h"

namespace albion::train {
namespace {

namespace fs = std::filesystem;
namespace profiler = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

constexpr const char* kStepMarker = "ProfilerStep#";  // torch.profiler's name, which trace tools know
constexpr std::size_t kSummaryRows = 25;

std::set<ActivityType> activities(const at::Device& device) {
  std::set<ActivityType> kinds = {ActivityType::CPU};
  if (device.is_cuda()) kinds.insert(ActivityType::CUDA);
  return kinds;
}

EventKind kind_of(const profiler::KinetoEvent& e) {
  switch (static_cast<libkineto::ActivityType>(e.activityType())) {
    case libkineto::ActivityType::CPU_OP:
      return EventKind::kHostOperator;
    case libkineto::ActivityType::USER_ANNOTATION:  // user scopes: our step markers, or others'
      return e.name().rfind(kStepMarker, 0) == 0 ? EventKind::kStep : EventKind::kHostOperator;
    case libkineto::ActivityType::CONCURRENT_KERNEL:
    case libkineto::ActivityType::GPU_MEMCPY:
    case libkineto::ActivityType::GPU_MEMSET:
      return EventKind::kDevice;
    default:
      return EventKind::kOther;
  }
}

std::vector<ProfiledEvent> profiled_events(const profiler::ProfilerResult& result) {
  std::vector<ProfiledEvent> events;
  for (const profiler::KinetoEvent& e : result.events()) {
    ProfiledEvent event;
    event.kind = kind_of(e);
    if (event.kind == EventKind::kOther) continue;
    event.name = e.name();
    // A device event's resource is its stream.
    event.thread = event.kind == EventKind::kDevice ? static_cast<std::uint64_t>(e.deviceResourceId())
                                                    : e.startThreadId();
    event.start_ns = e.startNs();
    event.end_ns = e.endNs();
    events.push_back(std::move(event));
  }
  return events;
}

// One line for the log: the costliest three of the device's table, else of the host's.
std::string costliest(const ProfileTable& device, const ProfileTable& host) {
  const ProfileTable& table = device.rows.empty() ? host : device;
  std::ostringstream out;
  for (std::size_t i = 0; i < std::min<std::size_t>(3, table.rows.size()); ++i) {
    out << (i ? ", " : "") << shorten_name(table.rows[i].name, 60) << " "
        << static_cast<int>(100 * table.rows[i].self_ms / std::max(table.total_ms, 1e-9) + 0.5) << "%";
  }
  return out.str();
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

void disable_quietly() noexcept {
  try {
    profiler::disableProfiler();
  } catch (...) {
  }
}

}  // namespace

StepProfiler::StepProfiler(const config::ProfileConfig& config, fs::path run_dir, int rank, const at::Device& device,
                           std::int64_t last_step)
    : first_(config.start_step - 1),
      end_(config.steps > 0 ? config.start_step - 1 + config.steps : 0),
      dir_(std::move(run_dir) / "profile"),
      rank_(rank),
      device_(device) {
  if (config.steps == 0) return;
  if (first_ > last_step) {
    log::warning("recipe key 'profile.start_step' = ", config.start_step, " is past the run's last step ",
                 last_step + 1, ": nothing is profiled");
  }
  // On a CPU run Kineto logs, as an error, that this CUDA build of torch sees no GPU. Set before
  // the training loop's threads start.
  if (!device_.is_cuda()) setenv("KINETO_LOG_LEVEL", "5", /*overwrite=*/0);
}

StepProfiler::~StepProfiler() {
  if (!recording_) return;  // else a run that failed inside the window: nothing is written
  step_marker_.reset();
  disable_quietly();
}

void StepProfiler::begin_step(std::int64_t step) {
  // From the window's first step only: a run resumed inside the window would record cold steps.
  if (step == first_ && end_ > first_ && !done_) {
    try {
      const ProfilerConfig config(ProfilerState::KINETO);
      const std::set<ActivityType> kinds = activities(device_);
      profiler::prepareProfiler(config, kinds);
      profiler::enableProfiler(config, kinds);
    } catch (const std::exception& e) {
      disable_quietly();
      log::warning("profile: torch's profiler did not start, training goes on: ", first_line(e.what()));
      done_ = true;
      return;
    }
    recording_ = true;
  }
  if (!recording_) return;
  step_marker_ = std::make_unique<at::RecordFunction>(at::RecordScope::USER_SCOPE);
  step_marker_->before(kStepMarker + std::to_string(step + 1));
}

void StepProfiler::end_step(std::int64_t step) {
  if (!recording_) return;
  step_marker_.reset();
  if (step + 1 >= end_) stop();
}

void StepProfiler::stop() {
  if (!recording_) return;
  recording_ = false;
  done_ = true;
  std::unique_ptr<profiler::ProfilerResult> result;
  try {
    if (device_.is_cuda()) {
      const c10::cuda::CUDAGuard guard(device_.index());
      c10::cuda::device_synchronize();  // every kernel of the window has ended
    }
    result = profiler::disableProfiler();
    write(*result);
  } catch (const std::exception& e) {
    if (!result) disable_quietly();
    log::warning("profile: nothing written to ", dir_.string(), ", training goes on: ", first_line(e.what()));
  }
}

void StepProfiler::write(profiler::ProfilerResult& result) const {
  const std::string base = "rank" + std::to_string(rank_);
  fs::create_directories(dir_);
  // Kineto reports a failed write only in its own log: the file must be there afterwards.
  const fs::path trace = dir_ / (base + ".pt.trace.json");
  fs::remove(trace);
  result.save(trace.string());
  ALBION_CHECK_AS(SystemError, fs::exists(trace), "cannot write ", trace.string());

  const ProfileSummary summary = summarize_profile(profiled_events(result), first_ + 1);
  const std::string text = format_profile_summary(summary, kSummaryRows);
  checkpoint::write_file_atomically(dir_ / (base + ".summary.txt"), text, checkpoint::ExistingFile::kReplace);
  log::info("profile in ", dir_.string(), ": ", first_line(text), "; costliest ",
            costliest(summary.device, summary.host));
}

}  // namespace albion::train
