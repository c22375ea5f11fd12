// File: launch/launch_plan.h
// What `albion launch` runs: the mpirun (or srun) command line for a request, built as a pure
// function of the request and what this machine and allocation look like, so tests and --dry-run
// see exactly what would be executed.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace albion::launch {

struct HostSlots {
  std::string host;
  int slots = 0;  // ranks on that host
};

struct LaunchRequest {
  int processes = 0;             // -n; 0: from hosts, the allocation, or this node's GPUs
  std::vector<HostSlots> hosts;  // --hosts a:4,b:4 or the parsed --hostfile
  std::string hostfile;          // passed through to mpirun when given
  int gpus_per_node = 0;         // --gpus-per-node; 0: this node's GPU count (CPU: no limit)
  std::string launcher = "auto"; // auto, mpirun, srun
  std::vector<std::string> command;  // the albion subcommand and its arguments
};

struct LaunchContext {
  std::string albion_executable;            // this binary, absolute
  int local_gpus = 0;                       // CUDA devices on this node
  int local_cores = 1;
  bool running_as_root = false;
  bool in_slurm_allocation = false;
  std::optional<int> slurm_job_nodes;
  std::optional<int> slurm_job_tasks;
  std::vector<std::string> forwarded_variables;  // names
};

// UsageError for contradictions (no process count anywhere, more ranks per node than GPUs, host
// slots that do not add up to -n, srun outside an allocation, an empty command).
std::vector<std::string> plan_launch(const LaunchRequest& request, const LaunchContext& context);
// The number of ranks plan_launch starts, with the same checks.
int launch_rank_count(const LaunchRequest& request, const LaunchContext& context);

// "a:4,b:4" -> {{"a", 4}, {"b", 4}}; a bare host means one slot. UsageError naming `what`.
std::vector<HostSlots> parse_host_list(const std::string& text, const std::string& what);
// An OpenMPI hostfile ("node1 slots=4", comments with #).
std::vector<HostSlots> read_hostfile(const std::string& path);

// The command as one shell-quoted line, for printing.
std::string shell_quote(const std::vector<std::string>& argv);

}  // namespace albion::launch
