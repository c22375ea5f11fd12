// File: launch/command_doctor.cpp
// `albion doctor`: reports every piece Albion needs and where it was loaded from, and fails when a
// required piece is missing or loaded twice. With --collectives (under mpirun/srun) every rank also
// runs a verified all-reduce over MPI, and over NCCL where GPUs are present.
#include <ATen/ATen.h>
#include <sys/resource.h>

#include <iomanip>
#include <iostream>
#include <vector>

#include "checkpoint/library_versions.h"
#include "collectives/library_versions.h"
#include "collectives/nccl_communicator.h"
#include "collectives/self_test.h"
#include "collectives/world.h"
#include "launch/cli.h"
#include "launch/fatal_handler.h"
#include "launch/command_options.h"
#include "launch/mpi_session.h"
#include "runtime/base/check.h"
#include "runtime/device.h"
#include "runtime/loaded_libraries.h"

namespace albion::launch {
namespace {

class Report {
 public:
  void line(const std::string& what, const std::string& value) {
    std::cout << "  " << std::left << std::setw(16) << what << value << "\n";
  }
  // A required piece: reports it, and remembers a failure when `ok` is false.
  void require(bool ok, const std::string& what, const std::string& value) {
    line(what, ok ? value : "MISSING: " + value);
    if (!ok) problems_.push_back(what);
  }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// "13.0 from /path/libcudart.so.13"; a required library must be mapped exactly once.
void require_single_copy(Report& report, const std::string& what, const std::string& prefix,
                         const std::string& version) {
  std::vector<std::string> copies = runtime::loaded_libraries(prefix);
  if (copies.size() == 1) {
    report.require(true, what, version + " from " + copies.front());
  } else if (copies.empty()) {
    report.require(false, what, prefix + " is not loaded");
  } else {
    report.require(false, what, str_cat(copies.size(), " copies loaded: ", join(copies)));
  }
}

void report_system(Report& report) {
  const runtime::ComputeReport compute = runtime::probe_compute();
  report.require(compute.torch_has_cuda, "torch",
                 compute.torch_version + (compute.torch_has_cuda
                                              ? ", built for CUDA " + compute.torch_cuda_build
                                              : " without CUDA (libtorch_cuda not loaded)"));
  report.line("CUDA driver", compute.cuda_driver.empty() ? "none" : compute.cuda_driver);
  require_single_copy(report, "CUDA runtime", "libcudart", compute.cuda_runtime);
  if (compute.devices.empty()) {
    report.line("CUDA devices", "none (" + compute.no_device_reason + ")");
  }
  for (const runtime::CudaDeviceInfo& device : compute.devices) {
    report.line(str_cat("cuda:", device.index),
                str_cat(device.name, ", sm_", device.compute_major, device.compute_minor, ", ",
                        device.total_memory_bytes >> 30, " GiB, ", device.multiprocessors, " SMs"));
  }
  require_single_copy(report, "NCCL", "libnccl", collectives::nccl_version());
  require_single_copy(report, "cuDNN", "libcudnn.so",
                      compute.cudnn_runtime.empty() ? "unknown" : compute.cudnn_runtime);
  report.require(collectives::mpi_library_version() != "unknown", "MPI",
                 collectives::mpi_library_version());
  report.require(checkpoint::hdf5_version() != "unknown", "HDF5", checkpoint::hdf5_version());
  report.require(checkpoint::openssl_has_required_ciphers(), "OpenSSL",
                 checkpoint::openssl_version() + " (AES-256-GCM, AES key wrap with padding)");
  // A warning, not a failure: where a hard limit of 0 was set before Albion ran and cores are piped
  // to a collector, only an administrator can close the gap (RLIMIT_CORE 1, or no collector).
  rlimit core{};
  getrlimit(RLIMIT_CORE, &core);
  report.line("core dumps", core_dumps_disabled()
                                ? str_cat("disabled (RLIMIT_CORE ", core.rlim_cur, "): keys never reach a core file")
                                : str_cat("WARNING: possible (RLIMIT_CORE ", core.rlim_cur,
                                          ", cores piped to a collector): a crash could write keys to disk"));
}

// Runs on every rank; returns false if any check failed anywhere.
bool check_collectives(Report& report, bool print) {
  MpiSession session;
  const collectives::WorldInfo world = collectives::describe_world(session.world());
  if (print) {
    report.line("MPI world", str_cat(world.size, " ranks on ", world.node_count, " node(s), ",
                                     world.local_size, " on ", world.hostname));
  }
  bool ok = true;
  for (std::int64_t elements : {std::int64_t{0}, std::int64_t{1001}, std::int64_t{1} << 22}) {
    collectives::SelfTestResult result =
        collectives::run_allreduce_self_test(session.world(), elements);
    ok = ok && result.mismatches == 0;
    if (print) {
      report.require(result.mismatches == 0, str_cat("MPI allreduce"),
                     str_cat(elements, " floats: ", result.mismatches == 0 ? "exact" : "WRONG", " (",
                             result.mismatches, " mismatches), ", std::fixed, std::setprecision(2),
                             result.bus_bandwidth_gbps, " GB/s bus bandwidth"));
    }
  }
  const int devices = static_cast<int>(runtime::probe_compute().devices.size());
  if (devices > 0) {
    // One device per local rank; NCCL sums rank+1 over the world on every element.
    collectives::NcclCommunicator nccl(session.world(), world.local_rank % devices, "world", nullptr);
    at::Tensor values = at::full({1 << 20}, static_cast<float>(world.rank + 1),
                                 at::TensorOptions().device(at::kCUDA, nccl.device()));
    nccl.all_reduce(values, collectives::ReduceOp::kSum)->wait();
    const float expected = static_cast<float>(world.size) * (world.size + 1) / 2;
    const bool exact = values.eq(expected).all().item<bool>();
    ok = ok && exact;
    if (print) {
      report.require(exact, "NCCL allreduce", exact ? "exact on every element" : "WRONG result");
    }
  } else if (print) {
    report.line("NCCL allreduce", "skipped (no CUDA device)");
  }
  int local_ok = ok ? 1 : 0;
  int all_ok = 0;
  MPI_Allreduce(&local_ok, &all_ok, 1, MPI_INT, MPI_MIN, session.world());
  return all_ok == 1;
}

}  // namespace

int run_doctor(const CommandArgs& args, const ProcessEnvironment& env) {
  const CommandSpec spec{
      "doctor", "albion doctor [--collectives]",
      "Check that this machine has what Albion needs: torch and its CUDA build, the CUDA driver\n"
      "and devices, NCCL, cuDNN, MPI, HDF5 and OpenSSL, each loaded exactly once. Exits 1 when a\n"
      "required piece is missing. A machine without a GPU is fine (it trains on CPU).\n"
      "With --collectives, start it on every rank (mpirun -np N albion doctor --collectives):\n"
      "each rank checks an exact all-reduce over MPI, and over NCCL where GPUs are present."};
  po::options_description options("options");
  options.add_options()("collectives", "also run verified all-reduces across all ranks");
  auto parsed = parse_command(args, spec, options);
  if (!parsed) return 0;

  const bool print = env.world_rank == 0;
  Report report;
  if (print) std::cout << "albion doctor\n";
  if (print) report_system(report);
  bool collectives_ok = true;
  if (parsed->values.count("collectives")) collectives_ok = check_collectives(report, print);
  if (!report.problems().empty() || !collectives_ok) {
    if (print) std::cout << "status: FAILED (" << join(report.problems()) << ")\n";
    return static_cast<int>(ExitCode::kFailure);
  }
  if (print) std::cout << "status: ok\n";
  return 0;
}

}  // namespace albion::launch
