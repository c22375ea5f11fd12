// File: launch/command_launch.cpp
// `albion launch`: planned (issue #5).
#include "launch/command_planned.h"

namespace albion::launch {

int run_launch(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"launch", "albion launch [-n N] [--hostfile F | --hosts a:4,b:4] [--gpus-per-node G] [--dry-run] -- <albion subcommand ...>",
                             "Start an albion subcommand on N ranks through mpirun, or srun inside\n"
                             "a Slurm allocation, one rank per GPU."},
                            5, "collectives, data parallelism, launcher"});
}

}  // namespace albion::launch
