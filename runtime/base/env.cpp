// File: runtime/base/env.cpp
#include "runtime/base/env.h"

#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <string>

#include "runtime/base/check.h"

namespace albion {
namespace {

std::optional<int> integer_variable(const char* name) {
  const char* raw = std::getenv(name);
  if (raw == nullptr || *raw == '\0') return std::nullopt;
  int value = 0;
  const char* end = raw + std::char_traits<char>::length(raw);
  auto [ptr, ec] = std::from_chars(raw, end, value);
  ALBION_CHECK_AS(UsageError, ec == std::errc() && ptr == end && value >= 0,
                  "environment variable ", name, "='", raw, "' is not a non-negative integer");
  return value;
}

LogLevel parse_log_level(const std::string& text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warning") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  throw UsageError(str_cat("ALBION_LOG_LEVEL='", text,
                           "' is not one of debug, info, warning, error"));
}

// Fills rank fields from one launcher's variable names; returns false if that launcher is absent.
bool read_launcher(ProcessEnvironment& env, Launcher launcher, const char* rank_var,
                   const char* size_var, const char* local_rank_var, const char* local_size_var) {
  std::optional<int> rank = integer_variable(rank_var);
  std::optional<int> size = integer_variable(size_var);
  if (!rank || !size) return false;
  ALBION_CHECK_AS(UsageError, *size >= 1 && *rank < *size, rank_var, "=", *rank, " is not below ",
                  size_var, "=", *size);
  env.launcher = launcher;
  env.world_rank = *rank;
  env.world_size = *size;
  env.local_rank = local_rank_var ? integer_variable(local_rank_var).value_or(*rank) : *rank;
  if (local_size_var) env.local_size = integer_variable(local_size_var);
  return true;
}

}  // namespace

const char* launcher_name(Launcher launcher) {
  switch (launcher) {
    case Launcher::kNone: return "none";
    case Launcher::kOpenMpi: return "openmpi";
    case Launcher::kSlurm: return "slurm";
    case Launcher::kPmi: return "pmi";
  }
  return "unknown";
}

namespace {

// A launcher's count, or nothing when unset or not a positive number.
std::optional<int> positive_integer(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  char* end = nullptr;
  const long parsed = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || parsed <= 0 || parsed > 1 << 24) return std::nullopt;
  return static_cast<int>(parsed);
}

}  // namespace

ProcessEnvironment read_process_environment() {
  ProcessEnvironment env;
  // OpenMPI first: under `srun --mpi=pmix` or mpirun inside an allocation both sets exist, and the
  // MPI runtime's view is the one MPI_Init will agree with.
  read_launcher(env, Launcher::kOpenMpi, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE") ||
      read_launcher(env, Launcher::kSlurm, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
                    nullptr /* SLURM_TASKS_PER_NODE is "4(x2)", not a number */) ||
      read_launcher(env, Launcher::kPmi, "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID",
                    "MPI_LOCALNRANKS");
  if (const char* level = std::getenv("ALBION_LOG_LEVEL"); level && *level) {
    env.log_level = parse_log_level(level);
  }
  env.stderr_is_terminal = isatty(STDERR_FILENO) == 1;
  env.in_slurm_allocation = std::getenv("SLURM_JOB_ID") != nullptr;
  env.slurm_job_nodes = positive_integer("SLURM_JOB_NUM_NODES");
  env.slurm_job_tasks = positive_integer("SLURM_NTASKS");
  for (char** variable = environ; *variable != nullptr; ++variable) {
    const std::string_view entry(*variable);
    const std::string_view name = entry.substr(0, entry.find('='));
    if (name.starts_with("NCCL_") || name.starts_with("CUDA_") || name.starts_with("ALBION_") ||
        name == "OMP_NUM_THREADS") {
      env.forwarded_variables.emplace_back(name);
    }
  }
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0) env.hostname = host;
  return env;
}

std::optional<std::string> environment_variable(std::string_view name) {
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

}  // namespace albion
