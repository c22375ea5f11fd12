// File: launch/command_submit.cpp
// `albion submit [--nodes N] [--gpus-per-node G | --ranks-per-node R] [--time T] [...] [--dry-run]
// -- train RECIPE.ini [--section.key=value ...]`: checks the recipe against the job's ranks, the
// residency policy and a key file now (not hours later, when the job leaves the queue), writes a
// batch script that stops at a checkpoint before the time limit and requeues itself
// (launch/batch_script.h) into RUN_DIR/slurm/, and submits it with sbatch.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "checkpoint/io/atomic_file.h"
#include "launch/batch_script.h"
#include "launch/cli.h"
#include "launch/command_options.h"
#include "launch/job_layout.h"
#include "launch/launch_plan.h"
#include "launch/memory_plan.h"
#include "launch/train_checkpoints.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/base/redact.h"
#include "runtime/config/recipe.h"

namespace albion::launch {
namespace {

namespace fs = std::filesystem;

const CommandSpec kSpec{
    "submit",
    "albion submit [--nodes N] [--gpus-per-node G | --ranks-per-node R] [--time T] [--partition P] "
    "[--account A] [--qos Q] [--stop-before S] [--max-restarts K] [--sbatch-option OPT ...] [--dry-run] "
    "-- train RECIPE.ini [--section.key=value ...]",
    "Queue a training run as a Slurm batch job that outlives the cluster's time limit and pre-emption.\n"
    "The recipe (against the job's nodes x ranks), the checkpoint directory's residency and a file:\n"
    "key are checked now. The batch script goes to RUN_DIR/slurm/NAME.sbatch and the job's output\n"
    "to RUN_DIR/slurm/NAME-JOBID.out.\n"
    "Inside the job `albion launch` starts one rank per GPU through srun. --stop-before seconds\n"
    "before the time limit the ranks stop at the next step, save a checkpoint and the job requeues\n"
    "itself (at most --max-restarts times); on pre-emption Slurm signals the ranks, which save the\n"
    "same way. A requeued job resumes from the newest checkpoint, so set checkpoint.interval.\n"
    "--dry-run prints the script and submits nothing.\n"
    "Example: albion submit --nodes 2 --gpus-per-node 4 --time 1-00:00:00 -- train recipes/gpt2_124m.ini"};

// `train RECIPE.ini [--section.key=value ...]` after the "--".
TrainArguments parse_train_command(const std::vector<std::string>& command) {
  ALBION_CHECK_AS(UsageError, !command.empty() && command.front() == "train",
                  "submit: give the training command after '--', e.g. albion submit --ranks-per-node 2 -- train "
                  "recipes/tiny.ini");
  const TrainArguments train = parse_train_arguments(std::span(command).subspan(1), "submit");
  ALBION_CHECK_AS(UsageError, !train.dry_run && !train.help, "submit: '", train.help ? "--help" : "--dry-run",
                  "' belongs before the '--' (submit's own option), not to the queued train command");
  ALBION_CHECK_AS(UsageError, !train.recipe.empty(), "submit: missing RECIPE.ini after '-- train'");
  return train;
}

// Nothing secret may reach the batch script (a file, and a copy in Slurm's state) or the job's
// environment, which sbatch copies into the controller's state files.
void require_no_secrets_for_slurm(const config::Recipe& recipe, const TrainArguments& train) {
  for (const std::string& arg : train.overrides) {
    ALBION_CHECK_AS(UsageError, without_pins(arg) == arg, "submit: ", without_pins(arg),
                    ": a PKCS#11 PIN given inline would be written into the batch script; use pin-source=file:PATH");
  }
  for (const auto& [name, spec] : {std::pair{"checkpoint.key", recipe.checkpoint.key}, {"data.key", recipe.data.key}}) {
    ALBION_CHECK_AS(UsageError, !spec.starts_with("env:"), "submit: recipe key '", name, "' = ", spec,
                    ": sbatch copies the environment, and so the key, into Slurm's job state; use file:PATH (mode "
                    "0600, on storage every node reads) or pkcs11:");
  }
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream directories(path != nullptr ? path : "");
  std::string directory;
  while (std::getline(directories, directory, ':')) {
    if (!directory.empty() && ::access((fs::path(directory) / program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Runs `sbatch --parsable SCRIPT`; returns the job id. sbatch's own message on a refusal (an
// unknown partition, a time over the partition's limit) becomes the one-line error.
std::string run_sbatch(const fs::path& script) {
  FILE* pipe = ::popen((shell_quote({"sbatch", "--parsable", script.string()}) + " 2>&1").c_str(), "r");
  ALBION_CHECK_AS(SystemError, pipe != nullptr, "submit: cannot run sbatch");
  std::string output;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  while (!output.empty() && (output.back() == '\n' || output.back() == '\r')) output.pop_back();
  const std::string last_line = output.substr(output.find_last_of('\n') + 1);
  ALBION_CHECK_AS(UsageError, status == 0, "submit: sbatch refused ", script.string(), ": ", last_line);
  return last_line.substr(0, last_line.find(';'));  // "JOBID" or "JOBID;CLUSTER"
}

}  // namespace

int run_submit(const CommandArgs& args, const ProcessEnvironment& env) {
  BatchRequest request;
  bool dry_run = false;
  po::options_description options("options");
  options.add_options()
      ("nodes", po::value(&request.nodes)->value_name("N"), "nodes (default 1)")
      ("gpus-per-node", po::value(&request.gpus_per_node)->value_name("G"), "GPUs per node, one rank each")
      ("ranks-per-node", po::value(&request.ranks_per_node)->value_name("R"), "ranks per node for a CPU job")
      ("time", po::value(&request.time_limit)->value_name("T"), "time limit, as sbatch --time (e.g. 1-00:00:00)")
      ("partition", po::value(&request.partition)->value_name("P"), "Slurm partition")
      ("account", po::value(&request.account)->value_name("A"), "Slurm account")
      ("qos", po::value(&request.qos)->value_name("Q"), "Slurm quality of service")
      ("stop-before", po::value(&request.stop_before_s)->value_name("S"),
       "seconds before the time limit to stop and save a checkpoint (default 300)")
      ("max-restarts", po::value(&request.max_restarts)->value_name("K"),
       "requeue at the time limit at most K times (default 10)")
      ("sbatch-option", po::value(&request.sbatch_options)->composing()->value_name("OPT"),
       "a further sbatch option, e.g. --sbatch-option=--constraint=gb300 (repeatable)")
      ("dry-run", po::bool_switch(&dry_run), "print the batch script and submit nothing");
  const std::optional<config::ParsedOptions> parsed = parse_command(args, kSpec, options);
  if (!parsed) return 0;

  const TrainArguments train = parse_train_command(parsed->passthrough);
  const config::Recipe recipe = config::load_recipe(train.recipe, train.overrides);  // errors now, not in the queue
  require_no_secrets_for_slurm(recipe, train);
  check_job_layout(recipe, world_size(request));
  if (const std::optional<RankMemory> memory = plan_rank_memory(recipe, world_size(request))) {
    log::info("submit: per rank: ", describe(*memory));
  }
  if (recipe.checkpoint.interval == 0) {
    log::warning("submit: checkpoint.interval is 0: a job stopped by its time limit or pre-emption starts again "
                 "from step 0");
  } else {
    // What `train` refuses at its start, refused before the job waits in the queue for it.
    const std::unique_ptr<checkpoint::AuditLog> audit = dry_run ? nullptr : open_run_audit_log(recipe, env);
    allowed_checkpoint_directory(recipe, audit.get());
    if (!recipe.checkpoint.plaintext && recipe.checkpoint.key.starts_with("file:")) {
      checkpoint::open_key_provider(recipe.checkpoint.key);  // an HSM may answer only on the compute nodes
    }
  }
  request.train_arguments = {fs::absolute(train.recipe).string()};
  request.train_arguments.insert(request.train_arguments.end(), train.overrides.begin(), train.overrides.end());

  ALBION_CHECK_AS(UsageError, !recipe.run.name.empty() && recipe.run.name.find('/') == std::string::npos,
                  "submit: recipe key 'run.name' = '", recipe.run.name, "' names the job and its files: give a name "
                  "without '/'");
  const fs::path output_directory = fs::absolute(recipe.run.dir).lexically_normal() / "slurm";
  const fs::path script = output_directory / (recipe.run.name + ".sbatch");
  BatchContext context;
  context.albion_executable = fs::read_symlink("/proc/self/exe").string();
  context.working_directory = fs::current_path().string();
  context.job_name = recipe.run.name;
  context.output_directory = output_directory.string();
  context.script_path = script.string();
  const std::string text = batch_script(request, context);
  if (dry_run) {
    std::cout << text << std::flush;
    std::cerr << "albion submit: would write " << script.string() << " and run: sbatch --parsable "
              << shell_quote({script.string()}) << std::endl;
    return 0;
  }

  ALBION_CHECK_AS(UsageError, on_path("sbatch"), "submit: sbatch is not on PATH (run submit on a Slurm login node, "
                  "or use 'albion launch' inside an allocation)");
  fs::create_directories(output_directory);
  checkpoint::write_file_atomically(script, text, checkpoint::ExistingFile::kReplace);
  const std::string job = run_sbatch(script);
  std::cout << "submitted job " << job << ": " << script.string() << "\n"
            << "  output:  " << (output_directory / (recipe.run.name + "-" + job + ".out")).string() << "\n"
            << "  watch:   squeue -j " << job << "\n"
            << "  stop:    scancel " << job << " (the ranks save a checkpoint if Slurm's KillWait allows)\n";
  return 0;
}

}  // namespace albion::launch
