// File: launch/batch_script.cpp
#include "launch/batch_script.h"

#include <array>
#include <limits>
#include <sstream>

#include "launch/launch_plan.h"
#include "runtime/base/check.h"

namespace albion::launch {
namespace {

// Options the script sets itself: a second value would silently win or break the requeue.
constexpr std::array kOwnOptions = {"--nodes", "--ntasks", "--ntasks-per-node", "--gpus-per-node", "--time",
                                    "--partition", "--account", "--qos", "--requeue", "--no-requeue",
                                    "--signal", "--output", "--error", "--open-mode", "--chdir", "--job-name"};

constexpr int kSignalEarliness_s = 60;

long long parse_count(const std::string& text, const std::string& what, const std::string& whole) {
  ALBION_CHECK_AS(UsageError, !text.empty() && text.size() <= 9 && text.find_first_not_of("0123456789") == std::string::npos,
                  what, " '", whole, "' is not a Slurm time (minutes, [days-]hours:minutes:seconds, ...)");
  return std::stoll(text);
}

// A value on an #SBATCH line: sbatch splits those lines at spaces unless the value is in double
// quotes, and it cannot escape a double quote or a newline.
std::string sbatch_value(const std::string& value, const std::string& what) {
  ALBION_CHECK_AS(UsageError, value.find_first_of("\"\n\r") == std::string::npos, "submit: ", what, " '", value,
                  "' holds a double quote or a line break, which an #SBATCH line cannot carry");
  return value.find_first_of(" \t") == std::string::npos ? value : "\"" + value + "\"";
}

void require_positive(int value, const std::string& what) {
  ALBION_CHECK_AS(UsageError, value > 0, "submit ", what, " must be positive, got ", value);
}

}  // namespace

long long slurm_time_seconds(const std::string& text, const std::string& what) {
  long long days = 0;
  std::string rest = text;
  const std::size_t dash = text.find('-');
  if (dash != std::string::npos) {
    days = parse_count(text.substr(0, dash), what, text);
    rest = text.substr(dash + 1);
  }
  std::vector<long long> fields;
  std::stringstream in(rest);
  std::string field;
  while (std::getline(in, field, ':')) fields.push_back(parse_count(field, what, text));
  if (!rest.empty() && rest.back() == ':') fields.push_back(parse_count("", what, text));
  ALBION_CHECK_AS(UsageError, !fields.empty() && fields.size() <= 3, what, " '", text,
                  "' is not a Slurm time (minutes, [days-]hours:minutes:seconds, ...)");
  if (dash != std::string::npos) {  // days-hours[:minutes[:seconds]]
    fields.resize(3, 0);
    return ((days * 24 + fields[0]) * 60 + fields[1]) * 60 + fields[2];
  }
  switch (fields.size()) {
    case 1: return fields[0] * 60;                                       // minutes
    case 2: return fields[0] * 60 + fields[1];                           // minutes:seconds
    default: return (fields[0] * 60 + fields[1]) * 60 + fields[2];       // hours:minutes:seconds
  }
}

int ranks_per_node(const BatchRequest& request) {
  ALBION_CHECK_AS(UsageError, request.gpus_per_node >= 0, "submit --gpus-per-node must not be negative");
  const int ranks = request.ranks_per_node > 0 ? request.ranks_per_node : request.gpus_per_node;
  ALBION_CHECK_AS(UsageError, ranks > 0,
                  "submit: how many ranks per node? give --gpus-per-node G (one rank per GPU) or --ranks-per-node R");
  ALBION_CHECK_AS(UsageError, request.gpus_per_node == 0 || ranks == request.gpus_per_node,
                  "submit: --ranks-per-node ", ranks, " differs from --gpus-per-node ", request.gpus_per_node,
                  ": a GPU job runs one rank per GPU");
  return ranks;
}

int world_size(const BatchRequest& request) {
  require_positive(request.nodes, "--nodes");
  const long long ranks = static_cast<long long>(request.nodes) * ranks_per_node(request);
  ALBION_CHECK_AS(UsageError, ranks <= std::numeric_limits<int>::max(), "submit: --nodes ", request.nodes, " x ",
                  ranks_per_node(request), " ranks per node is more ranks than MPI counts");
  return static_cast<int>(ranks);
}

std::string batch_script(const BatchRequest& request, const BatchContext& context) {
  ALBION_CHECK_AS(UsageError, !request.train_arguments.empty(),
                  "submit: missing the recipe after '-- train' (e.g. albion submit --nodes 2 -- train recipes/gpt2_124m.ini)");
  world_size(request);  // checks --nodes and the ranks per node
  require_positive(request.stop_before_s, "--stop-before");
  ALBION_CHECK_AS(UsageError, request.max_restarts >= 0, "submit --max-restarts must not be negative");
  if (!request.time_limit.empty()) {
    const long long limit = slurm_time_seconds(request.time_limit, "submit --time");
    // Slurm may send the signal up to a minute early (its checks come round once a minute at most).
    ALBION_CHECK_AS(UsageError, limit > request.stop_before_s + kSignalEarliness_s, "submit --time ",
                    request.time_limit, " (", limit, " s) must be longer than --stop-before ", request.stop_before_s,
                    " s plus the ", kSignalEarliness_s, " s by which Slurm may signal early, or the job may be told to "
                    "stop as it starts");
  }

  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# Written by `albion submit`; submit it again with: sbatch " << context.script_path << "\n"
    << "#SBATCH --job-name=" << sbatch_value(context.job_name, "run.name") << "\n"
    << "#SBATCH --nodes=" << request.nodes << "\n"
    << "#SBATCH --ntasks-per-node=" << ranks_per_node(request) << "\n";
  if (request.gpus_per_node > 0) s << "#SBATCH --gpus-per-node=" << request.gpus_per_node << "\n";
  if (!request.time_limit.empty()) s << "#SBATCH --time=" << request.time_limit << "\n";
  if (!request.partition.empty()) s << "#SBATCH --partition=" << sbatch_value(request.partition, "--partition") << "\n";
  if (!request.account.empty()) s << "#SBATCH --account=" << sbatch_value(request.account, "--account") << "\n";
  if (!request.qos.empty()) s << "#SBATCH --qos=" << sbatch_value(request.qos, "--qos") << "\n";
  s << "#SBATCH --requeue\n"
    << "#SBATCH --signal=B:USR1@" << request.stop_before_s << "\n"
    << "#SBATCH --chdir=" << sbatch_value(context.working_directory, "the working directory") << "\n"
    << "#SBATCH --output=" << sbatch_value(context.output_directory + "/%x-%j.out", "the output directory") << "\n"
    << "#SBATCH --open-mode=append\n";
  for (const std::string& option : request.sbatch_options) {
    ALBION_CHECK_AS(UsageError, option.starts_with("--") && option.size() > 2, "submit --sbatch-option '", option,
                    "' must be a long sbatch option, e.g. --constraint=gb300");
    const std::string name = option.substr(0, option.find('='));
    for (const char* own : kOwnOptions) {
      ALBION_CHECK_AS(UsageError, name != own, "submit --sbatch-option ", option, ": submit sets ", own,
                      " itself; use submit's own option or leave it out");
    }
    s << "#SBATCH " << sbatch_value(option, "--sbatch-option") << "\n";
  }

  std::vector<std::string> launch = {context.albion_executable, "launch", "--launcher", "srun"};
  if (request.gpus_per_node > 0) launch.insert(launch.end(), {"--gpus-per-node", std::to_string(request.gpus_per_node)});
  launch.insert(launch.end(), {"--", "train"});
  launch.insert(launch.end(), request.train_arguments.begin(), request.train_arguments.end());

  s << "\n"
    << "set -u\n"
    << "echo \"albion submit: job $SLURM_JOB_ID, start $((${SLURM_RESTART_COUNT:-0} + 1)), on $SLURM_JOB_NODELIST at "
       "$(date -u +%FT%TZ)\"\n"
    << "stop_reason=\n"
    << "# The time limit is near (--signal above): ask the ranks, not this shell, to stop. They save a\n"
    << "# checkpoint at the next step boundary and exit 130.\n"
    << "trap 'stop_reason=time-limit; scancel --signal=TERM \"$SLURM_JOB_ID\"' USR1\n"
    << "# Pre-emption or scancel: Slurm has signalled the ranks itself. Keep waiting while they save.\n"
    << "trap 'stop_reason=terminated' TERM\n"
    << shell_quote(launch) << " &\n"
    << "ranks=$!\n"
    << "# A trapped signal ends `wait` early: wait again until the ranks have exited.\n"
    << "while :; do\n"
    << "  wait \"$ranks\"; status=$?\n"
    << "  kill -0 \"$ranks\" 2>/dev/null || break\n"
    << "done\n"
    << "# Not only 130: a rank that the signal reached before it could catch it (while starting) dies\n"
    << "# of it, with nothing since its checkpoint to lose.\n"
    << "if [ \"$status\" -ne 0 ] && [ \"$stop_reason\" = time-limit ]; then\n"
    << "  if [ \"${SLURM_RESTART_COUNT:-0}\" -lt " << request.max_restarts << " ]; then\n"
    << "    echo \"albion submit: stopped before the time limit (exit code $status); requeueing job $SLURM_JOB_ID "
       "to resume\"\n"
    << "    scontrol requeue \"$SLURM_JOB_ID\"\n"
    << "  else\n"
    << "    echo \"albion submit: stopped before the time limit (exit code $status); not requeued: " << request.max_restarts
    << " restarts reached. Resume with: sbatch " << shell_quote({context.script_path}) << "\"\n"
    << "  fi\n"
    << "elif [ \"$status\" -eq 130 ]; then\n"
    << "  echo \"albion submit: stopped by Slurm (pre-emption or scancel) after saving a checkpoint\"\n"
    << "fi\n"
    << "exit \"$status\"\n";
  return s.str();
}

}  // namespace albion::launch
