// File: runtime/train/step_profiler.cpp
#include "runtime/train/step_profiler.h"

#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

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

std::vector<ProfiledEvent> profiled_events(const profiler::ProfilerResult& result) {
  std::vector<ProfiledEvent> events;
  for (const profiler::KinetoEvent& e : result.events()) {
    ProfiledEvent event;
    event.name = e.name();
    if (event.name.rfind(kStepMarker, 0) == 0) continue;  // the window itself, timed on the host
    event.on_device = e.deviceType() == c10::DeviceType::CUDA;
    event.thread = event.on_device ? static_cast<std::uint64_t>(e.deviceResourceId()) : e.startThreadId();
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

// Written beside, then renamed: a reader never sees half a file.
void replace_file(const fs::path& path, const std::string& text) {
  const fs::path partial = path.string() + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out << text;
    ALBION_CHECK_AS(SystemError, out.good(), "cannot write ", partial.string());
  }
  fs::rename(partial, path);
}

}  // namespace

StepProfiler::StepProfiler(const config::ProfileConfig& config, fs::path run_dir, int rank, const at::Device& device,
                           std::int64_t last_step)
    : first_(config.start_step - 1),
      end_(config.steps > 0 ? config.start_step - 1 + config.steps : 0),
      dir_(std::move(run_dir) / "profile"),
      rank_(rank),
      device_(device) {
  if (config.steps > 0 && first_ > last_step) {
    log::warning("recipe key 'profile.start_step' = ", config.start_step, " is past the run's last step ",
                 last_step + 1, ": nothing is profiled");
  }
}

StepProfiler::~StepProfiler() {
  if (!recording_) return;
  step_marker_.reset();
  try {
    profiler::disableProfiler();  // a run that failed inside the window: nothing is written
  } catch (const std::exception&) {
  }
}

void StepProfiler::begin_step(std::int64_t step) {
  if (!recording_ && !done_ && step >= first_ && step < end_) {
    // On a CPU run, Kineto would log as an error that this CUDA build of torch sees no GPU.
    if (!device_.is_cuda()) setenv("KINETO_LOG_LEVEL", "5", /*overwrite=*/0);
    try {
      const ProfilerConfig config(ProfilerState::KINETO);
      profiler::prepareProfiler(config, activities(device_));
      profiler::enableProfiler(config, activities(device_));
    } catch (const std::exception& e) {
      const std::string why = e.what();
      log::warning("profile: torch's profiler did not start, training goes on: ", why.substr(0, why.find('\n')));
      done_ = true;
      return;
    }
    recording_ = true;
    first_recorded_ = step;
  }
  if (!recording_) return;
  step_marker_ = std::make_unique<at::RecordFunction>(at::RecordScope::USER_SCOPE);
  step_marker_->before(kStepMarker + std::to_string(step + 1));
  step_start_ = std::chrono::steady_clock::now();
}

void StepProfiler::end_step(std::int64_t step) {
  if (!recording_) return;
  step_marker_.reset();
  wall_ms_ += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - step_start_).count();
  ++recorded_;
  if (step + 1 >= end_) stop();
}

void StepProfiler::stop() {
  if (!recording_ || recorded_ == 0) return;
  if (device_.is_cuda()) c10::cuda::device_synchronize();  // every kernel of the window has ended
  std::unique_ptr<profiler::ProfilerResult> result = profiler::disableProfiler();
  recording_ = false;
  done_ = true;

  const std::string base = "rank" + std::to_string(rank_);
  fs::create_directories(dir_);
  const fs::path trace = dir_ / (base + ".pt.trace.json");
  const fs::path partial_trace = dir_ / (base + ".pt.trace.json.partial");
  result->save(partial_trace.string());
  fs::rename(partial_trace, trace);

  const std::vector<ProfiledEvent> events = profiled_events(*result);
  const ProfileTable device = self_times(events, true);
  const ProfileTable host = self_times(events, false);
  const ProfileWindow window{first_recorded_ + 1, recorded_, wall_ms_};
  const std::string summary = format_profile_summary(window, device, host, kSummaryRows);
  replace_file(dir_ / (base + ".summary.txt"), summary);
  log::info("profile in ", dir_.string(), ": ", summary.substr(0, summary.find('\n')), "; costliest ",
            costliest(device, host));
}

}  // namespace albion::train
