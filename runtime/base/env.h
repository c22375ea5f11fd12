// File: runtime/base/env.h
// The one place that reads environment variables. Everything else receives what it needs from the
// ProcessEnvironment read here at start-up (tests construct one directly instead of mutating the
// process environment). Key providers that read a user-named variable (`env:VAR`) call
// environment_variable(), so every read stays auditable from this file.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace albion {

// Which launcher started this process, judged from the variables it exports.
enum class Launcher {
  kNone,     // a plain process
  kOpenMpi,  // mpirun / mpiexec from OpenMPI (OMPI_COMM_WORLD_*)
  kSlurm,    // srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID)
  kPmi,      // another PMI-based launcher, e.g. MPICH's Hydra (PMI_RANK, PMI_SIZE)
};

const char* launcher_name(Launcher launcher);

enum class LogLevel { kDebug, kInfo, kWarning, kError };

struct ProcessEnvironment {
  Launcher launcher = Launcher::kNone;
  int world_rank = 0;
  int world_size = 1;
  int local_rank = 0;
  // Ranks on this node, where the launcher says so plainly; MPI_Comm_split_type is authoritative.
  std::optional<int> local_size;
  LogLevel log_level = LogLevel::kInfo;  // ALBION_LOG_LEVEL=debug|info|warning|error
  bool stderr_is_terminal = false;       // progress bars only on a terminal
  bool in_slurm_allocation = false;      // SLURM_JOB_ID present (launch may use srun)
  std::optional<int> slurm_job_nodes;    // SLURM_JOB_NUM_NODES
  std::optional<int> slurm_job_tasks;    // SLURM_NTASKS
  // Names (not values) of the variables `albion launch` forwards to every rank: NCCL_*, CUDA_*,
  // ALBION_*, OMP_NUM_THREADS.
  std::vector<std::string> forwarded_variables;
  std::string hostname;
};

// Reads the launcher's rank variables, ALBION_* settings and terminal state.
// Throws UsageError for malformed values (e.g. ALBION_LOG_LEVEL=loud).
ProcessEnvironment read_process_environment();

// The value of a variable named by the user (e.g. a key provider's `env:VAR`).
std::optional<std::string> environment_variable(std::string_view name);

}  // namespace albion
