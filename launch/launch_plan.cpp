// File: launch/launch_plan.cpp
#include "launch/launch_plan.h"

#include <fstream>
#include <numeric>
#include <sstream>

#include "runtime/base/check.h"

namespace albion::launch {
namespace {

int parse_slots(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  int value = 0;
  try {
    value = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  ALBION_CHECK_AS(UsageError, used == text.size() && value > 0, what, ": slot count '", text,
                  "' is not a positive number");
  return value;
}

int total_slots(const std::vector<HostSlots>& hosts) {
  return std::accumulate(hosts.begin(), hosts.end(), 0, [](int sum, const HostSlots& h) { return sum + h.slots; });
}

std::vector<std::string> mpirun_command(const LaunchRequest& request, const LaunchContext& context, int processes,
                                        int per_node) {
  std::vector<std::string> argv = {"mpirun", "-np", std::to_string(processes)};
  if (context.running_as_root) argv.push_back("--allow-run-as-root");  // containers run as root
  if (!request.hostfile.empty()) {
    argv.insert(argv.end(), {"--hostfile", request.hostfile});
  } else if (!request.hosts.empty()) {
    std::string hosts;
    for (const HostSlots& h : request.hosts) hosts += (hosts.empty() ? "" : ",") + h.host + ":" + std::to_string(h.slots);
    argv.insert(argv.end(), {"--host", hosts});
  } else if (!context.in_slurm_allocation && processes > context.local_cores) {
    argv.push_back("--oversubscribe");  // more CPU ranks than cores on this one machine
  }
  if (per_node > 0) {
    // One rank per GPU, packed by node so consecutive ranks (a tensor-parallel group) share NVLink.
    argv.insert(argv.end(), {"--map-by", "ppr:" + std::to_string(per_node) + ":node", "--bind-to", "none"});
  } else {
    argv.insert(argv.end(), {"--map-by", "slot", "--bind-to", "none"});  // torch threads pick their cores
  }
  for (const std::string& name : context.forwarded_variables) argv.insert(argv.end(), {"-x", name});
  return argv;
}

std::vector<std::string> srun_command(const LaunchContext& context, int processes, int per_node) {
  ALBION_CHECK_AS(UsageError, context.in_slurm_allocation,
                  "launch --launcher srun: not inside a Slurm allocation (no SLURM_JOB_ID); use salloc/sbatch, "
                  "or --launcher mpirun");
  std::vector<std::string> argv = {"srun", "--mpi=pmix", "--kill-on-bad-exit=1", "--export=ALL",
                                   "--ntasks=" + std::to_string(processes)};
  if (per_node > 0) argv.push_back("--ntasks-per-node=" + std::to_string(per_node));
  return argv;
}

}  // namespace

std::vector<HostSlots> parse_host_list(const std::string& text, const std::string& what) {
  std::vector<HostSlots> hosts;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    ALBION_CHECK_AS(UsageError, !item.empty(), what, ": empty host in '", text, "'");
    const std::size_t colon = item.find(':');
    HostSlots h{item.substr(0, colon), 1};
    if (colon != std::string::npos) h.slots = parse_slots(item.substr(colon + 1), what);
    ALBION_CHECK_AS(UsageError, !h.host.empty(), what, ": missing host name in '", item, "'");
    hosts.push_back(h);
  }
  ALBION_CHECK_AS(UsageError, !hosts.empty(), what, ": no hosts given");
  return hosts;
}

std::vector<HostSlots> read_hostfile(const std::string& path) {
  std::ifstream in(path);
  ALBION_CHECK_AS(UsageError, in.good(), "launch --hostfile ", path, ": cannot be read");
  std::vector<HostSlots> hosts;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    std::stringstream fields(line);
    HostSlots h;
    if (!(fields >> h.host)) continue;
    h.slots = 1;
    std::string field;
    while (fields >> field) {
      if (field.starts_with("slots=")) h.slots = parse_slots(field.substr(6), str_cat(path, ":", number));
    }
    hosts.push_back(h);
  }
  ALBION_CHECK_AS(UsageError, !hosts.empty(), "launch --hostfile ", path, ": no hosts in it");
  return hosts;
}

int launch_rank_count(const LaunchRequest& request, const LaunchContext& context) {
  ALBION_CHECK_AS(UsageError, !request.command.empty(),
                  "launch: missing the albion subcommand after '--' (e.g. albion launch -n 2 -- train recipes/tiny.ini)");
  ALBION_CHECK_AS(UsageError, request.command.front() != "launch", "launch: cannot launch 'launch' itself");
  ALBION_CHECK_AS(UsageError, request.launcher == "auto" || request.launcher == "mpirun" || request.launcher == "srun",
                  "launch --launcher must be auto, mpirun or srun, got '", request.launcher, "'");
  ALBION_CHECK_AS(UsageError, request.processes >= 0, "launch -n must be positive");
  ALBION_CHECK_AS(UsageError, request.gpus_per_node >= 0, "launch --gpus-per-node must be positive");

  // Ranks per node: one per GPU. Only this node's GPUs can be checked here; bootstrap checks the
  // others when the ranks start.
  const int per_node = request.gpus_per_node > 0 ? request.gpus_per_node : context.local_gpus;
  if (context.local_gpus > 0) {
    ALBION_CHECK_AS(UsageError, per_node <= context.local_gpus, "launch --gpus-per-node ", per_node,
                    " exceeds the ", context.local_gpus, " CUDA device(s) of this node");
    for (const HostSlots& h : request.hosts) {
      ALBION_CHECK_AS(UsageError, h.slots <= per_node, "launch: host ", h.host, " has ", h.slots,
                      " slots, more ranks than its ", per_node, " GPUs");
    }
  }

  int processes = request.processes;
  if (processes == 0 && !request.hosts.empty()) processes = total_slots(request.hosts);
  if (processes == 0 && context.in_slurm_allocation && context.slurm_job_tasks) processes = *context.slurm_job_tasks;
  if (processes == 0 && context.in_slurm_allocation && context.slurm_job_nodes && per_node > 0) {
    processes = *context.slurm_job_nodes * per_node;
  }
  if (processes == 0 && context.local_gpus > 0) processes = context.local_gpus;
  ALBION_CHECK_AS(UsageError, processes > 0, "launch: how many ranks? give -n N (no GPUs, hosts or Slurm "
                  "allocation to count them from)");
  if (!request.hosts.empty()) {
    ALBION_CHECK_AS(UsageError, processes <= total_slots(request.hosts), "launch -n ", processes, " exceeds the ",
                    total_slots(request.hosts), " slots of the hosts given");
  }
  return processes;
}

std::vector<std::string> plan_launch(const LaunchRequest& request, const LaunchContext& context) {
  const int processes = launch_rank_count(request, context);
  const int per_node = request.gpus_per_node > 0 ? request.gpus_per_node : context.local_gpus;
  const bool use_srun = request.launcher == "srun" ||
                        (request.launcher == "auto" && context.in_slurm_allocation && request.hosts.empty());
  std::vector<std::string> argv = use_srun ? srun_command(context, processes, context.local_gpus > 0 ? per_node : 0)
                                           : mpirun_command(request, context, processes,
                                                            context.local_gpus > 0 || request.gpus_per_node > 0 ? per_node : 0);
  argv.push_back(context.albion_executable);
  argv.insert(argv.end(), request.command.begin(), request.command.end());
  return argv;
}

std::string shell_quote(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& arg : argv) {
    if (!line.empty()) line += ' ';
    const bool plain = !arg.empty() && arg.find_first_not_of(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") == std::string::npos;
    if (plain) {
      line += arg;
      continue;
    }
    line += '\'';
    for (char c : arg) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  return line;
}

}  // namespace albion::launch
