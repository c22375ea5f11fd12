// File: launch/batch_script.h
// What `albion submit` hands to sbatch: a batch script, built as a pure function of the request,
// so tests and --dry-run see exactly what the job will run.
//
// The script makes a long run survive a cluster's limits. Slurm signals the script (not the ranks)
// `stop_before_s` seconds before the time limit; the script asks the ranks to stop, they save a
// checkpoint at the next step and exit 130, and the script requeues the job, which resumes from
// that checkpoint. Under pre-emption or scancel Slurm signals the ranks itself; the script only
// waits for them to finish saving (Slurm requeues a pre-empted job on its own).
#pragma once

#include <string>
#include <vector>

namespace albion::launch {

struct BatchRequest {
  int nodes = 1;
  int gpus_per_node = 0;   // one rank per GPU; 0: a CPU job
  int ranks_per_node = 0;  // 0: gpus_per_node
  std::string time_limit;  // sbatch --time ("1-00:00:00", "90"); empty: the partition's default
  std::string partition;
  std::string account;
  std::string qos;
  int stop_before_s = 300;  // signal this long before the time limit
  int max_restarts = 10;    // requeues at the time limit, at most
  std::vector<std::string> sbatch_options;  // further "--name=value" lines, e.g. --constraint=gb300
  std::vector<std::string> train_arguments;  // RECIPE.ini and its overrides
};

struct BatchContext {
  std::string albion_executable;  // absolute
  std::string working_directory;  // absolute: the job runs there, so relative recipe paths hold
  std::string job_name;           // from run.name
  std::string output_directory;   // absolute: Slurm's output file goes there
  std::string script_path;        // where the script is written, for the "submit it again" hints
};

// UsageError for a request that cannot make a sensible job: no rank count, a time limit that is
// not Slurm's format or not longer than stop_before_s plus the minute by which Slurm may signal
// early, an option submit sets itself, a newline or double quote where sbatch would misread it.
std::string batch_script(const BatchRequest& request, const BatchContext& context);

// Ranks per node (--ranks-per-node, else one per GPU) and in all (times --nodes); UsageError for a
// request that gives neither or gives the two differently.
int ranks_per_node(const BatchRequest& request);
int world_size(const BatchRequest& request);

// Slurm's time formats ("minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
// "days-hours:minutes", "days-hours:minutes:seconds") in seconds; UsageError naming `what`.
long long slurm_time_seconds(const std::string& text, const std::string& what);

}  // namespace albion::launch
