// File: launch/command_launch.cpp
// `albion launch [-n N] [--hostfile F | --hosts a:4,b:4] [--gpus-per-node G] [--launcher L]
// [--dry-run] -- <albion subcommand ...>`: builds the mpirun (or srun) command that starts the
// subcommand on N ranks (launch/launch_plan.h), checks the hosts answer and a train command's
// recipe, prints the command, and replaces this process with it, so the job's exit code is the
// launcher's.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <span>
#include <thread>

#include "launch/cli.h"
#include "launch/command_options.h"
#include "launch/host_reachability.h"
#include "launch/job_layout.h"
#include "launch/launch_plan.h"
#include "launch/memory_plan.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/base/redact.h"
#include "runtime/config/recipe.h"
#include "runtime/device.h"

namespace albion::launch {
namespace {

const CommandSpec kSpec{
    "launch",
    "albion launch [-n N] [--hostfile F | --hosts a:4,b:4] [--gpus-per-node G] [--launcher L] [--dry-run] "
    "-- <albion subcommand ...>",
    "Start an albion subcommand on N ranks, one per GPU, through OpenMPI's mpirun, or srun inside\n"
    "a Slurm allocation. Ranks are packed by node (consecutive ranks share a node's NVLink), and\n"
    "NCCL_*, CUDA_*, ALBION_* and OMP_NUM_THREADS are forwarded to every rank. Without -n the\n"
    "count comes from the hosts' slots, the Slurm allocation, or this node's GPUs. Remote hosts\n"
    "must resolve and answer on their ssh port before anything starts. A train command's recipe\n"
    "is checked against the rank count first, and the memory each of its ranks will hold for the\n"
    "model is printed; eval and generate commands' options and paths are checked too. --dry-run\n"
    "prints the command and exits.\n"
    "Examples: albion launch -n 2 -- train recipes/tiny.ini\n"
    "          albion launch -n 4 -- eval runs/tiny/checkpoints --dataset data/tiny --tensor 2\n"
    "          albion launch -n 2 -- generate runs/tiny/checkpoints (the model cut over both ranks)"};

// A recipe every rank would refuse (an unknown key, a batch that does not split over the ranks),
// or an eval or generate command's options, are refused once here, before mpirun starts N copies
// of the same error. Returns what one rank of a training job will hold, when that can be known before the
// ranks start.
std::optional<RankMemory> check_command(const std::vector<std::string>& command, int world_size) {
  const CommandArgs args(command.begin() + 1, command.end());
  if (command.front() == "eval") check_eval_command(args, world_size);
  if (command.front() == "generate") check_generate_command(args);
  if (command.front() != "train") return std::nullopt;
  const TrainArguments train = parse_train_arguments(std::span(command).subspan(1), "train");
  if (train.help || train.recipe.empty()) return std::nullopt;  // the ranks print help or the usage hint
  const config::Recipe recipe = config::load_recipe(train.recipe, train.overrides);
  check_job_layout(recipe, world_size);
  return plan_rank_memory(recipe, world_size);
}

}  // namespace

int run_launch(const CommandArgs& args, const ProcessEnvironment& env) {
  LaunchRequest request;
  std::string hosts;
  bool dry_run = false;
  po::options_description options("options");
  options.add_options()
      (",n", po::value(&request.processes)->value_name("N"), "number of ranks")
      ("hosts", po::value(&hosts)->value_name("a:4,b:4"), "hosts and their slots (ranks)")
      ("hostfile", po::value(&request.hostfile)->value_name("FILE"), "OpenMPI hostfile (host slots=N per line)")
      ("gpus-per-node", po::value(&request.gpus_per_node)->value_name("G"), "ranks per node; default: this node's GPUs")
      ("launcher", po::value(&request.launcher)->value_name("L"), "auto (srun inside Slurm, else mpirun), mpirun or srun")
      ("dry-run", po::bool_switch(&dry_run), "print the command and exit");
  const std::optional<config::ParsedOptions> parsed = parse_command(args, kSpec, options);
  if (!parsed) return 0;
  request.command = parsed->passthrough;
  ALBION_CHECK_AS(UsageError, hosts.empty() || request.hostfile.empty(), "launch: give --hosts or --hostfile, not both");
  if (!hosts.empty()) request.hosts = parse_host_list(hosts, "launch --hosts");
  if (!request.hostfile.empty()) request.hosts = read_hostfile(request.hostfile);

  LaunchContext context;
  context.albion_executable = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::vector<runtime::CudaDeviceInfo> gpus = runtime::probe_compute().devices;
  context.local_gpus = static_cast<int>(gpus.size());
  context.local_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  context.running_as_root = geteuid() == 0;
  context.in_slurm_allocation = env.in_slurm_allocation;
  context.slurm_job_nodes = env.slurm_job_nodes;
  context.slurm_job_tasks = env.slurm_job_tasks;
  context.forwarded_variables = env.forwarded_variables;
  const std::vector<std::string> argv = plan_launch(request, context);
  const std::optional<RankMemory> memory = check_command(request.command, launch_rank_count(request, context));
  require_reachable(request.hosts, env.hostname);

  std::vector<std::string> shown;  // a PIN in a key spec is passed on, not printed
  for (const std::string& arg : argv) shown.push_back(without_pins(arg));
  std::cerr << "albion launch: " << shell_quote(shown) << std::endl;
  if (memory) std::cerr << "albion launch: per rank: " << describe(*memory) << std::endl;
  if (memory && !gpus.empty()) {
    const std::string warning = device_memory_warning(*memory, gpus.front().total_memory_bytes, gpus.front().name);
    if (!warning.empty()) log::warning("launch: ", warning);
  }
  if (dry_run) return 0;
  std::vector<char*> pointers;
  for (const std::string& arg : argv) pointers.push_back(const_cast<char*>(arg.c_str()));
  pointers.push_back(nullptr);
  execvp(pointers[0], pointers.data());
  throw UsageError(str_cat("launch: cannot run ", argv[0], ": ", std::strerror(errno)));
}

}  // namespace albion::launch
