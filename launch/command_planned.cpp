// File: launch/command_planned.cpp
// Subcommands whose issues have not landed. Their --help shows the planned interface and says
// plainly that it is not implemented; running them fails with exit code 1. Each moves to its own
// command_<name>.cpp when its issue lands.
#include <iostream>

#include "launch/cli.h"
#include "launch/command_options.h"
#include "runtime/base/check.h"

namespace albion::launch {
namespace {

struct PlannedCommand {
  CommandSpec spec;
  int issue;
  const char* capability;
};

int run_planned(const CommandArgs& args, const PlannedCommand& planned) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg == "--help" || arg == "-h") {
      std::cout << "usage: " << planned.spec.usage << "\n\n"
                << planned.spec.description << "\n\n"
                << "Status: not implemented yet (issue #" << planned.issue << ": "
                << planned.capability << ").\n";
      return static_cast<int>(ExitCode::kFailure);
    }
  }
  throw NotImplementedError(str_cat("'albion ", planned.spec.name, "' is not implemented yet (issue #",
                                    planned.issue, ": ", planned.capability, ")"));
}

}  // namespace

int run_train(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"train", "albion train RECIPE.ini [--section.key=value ...]",
                             "Train a GPT-2 or Llama model as the INI recipe describes; any recipe\n"
                             "key can be overridden on the command line."},
                            4, "models, trainer loop, recipes, metrics"});
}

int run_launch(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"launch",
                             "albion launch [-n N] [--hostfile F | --hosts a:4,b:4] "
                             "[--gpus-per-node G] [--dry-run] -- <albion subcommand ...>",
                             "Start an albion subcommand on N ranks through mpirun, or srun inside\n"
                             "a Slurm allocation, one rank per GPU."},
                            5, "collectives, data parallelism, launcher"});
}

int run_data(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"data", "albion data prepare|inspect ...",
                             "Tokenize text, JSONL or chat data into (optionally encrypted) HDF5\n"
                             "token shards, and inspect prepared datasets."},
                            3, "tokenizers, data prepare, sharded loader"});
}

int run_ckpt(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"ckpt", "albion ckpt list|inspect|verify|rotate-key|export|audit ...",
                             "Manage encrypted checkpoints: list, inspect, verify every chunk,\n"
                             "re-wrap keys, export to safetensors, verify the audit log."},
                            6, "sovereign checkpoints"});
}

int run_keys(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"keys", "albion keys generate --out FILE",
                             "Generate a 256-bit key-encryption key in a file readable only by its\n"
                             "owner."},
                            6, "sovereign checkpoints: key providers"});
}

}  // namespace albion::launch
