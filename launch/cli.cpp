// File: launch/cli.cpp
#include "launch/cli.h"

#include <iostream>

#include "runtime/base/check.h"
#include "runtime/config/nearest_name.h"

namespace albion::launch {

const std::vector<Subcommand>& subcommands() {
  static const std::vector<Subcommand> table = {
      {"train", "train a model from an INI recipe", run_train},
      {"launch", "start a command on many ranks through mpirun or srun", run_launch},
      {"submit", "queue a training run as a Slurm batch job that requeues itself", run_submit},
      {"data", "prepare and inspect token datasets", run_data},
      {"ckpt", "list, inspect, verify, re-key and export checkpoints", run_ckpt},
      {"generate", "generate text with the model in a checkpoint", run_generate},
      {"eval", "score the model in a checkpoint on a dataset: loss and perplexity", run_eval},
      {"keys", "generate and check encryption keys", run_keys},
      {"doctor", "check this machine: torch, CUDA, NCCL, cuDNN, MPI, HDF5, OpenSSL", run_doctor},
      {"version", "print the version of albion and what it was built with", run_version},
  };
  return table;
}

namespace {

void print_usage(std::ostream& out) {
  out << "usage: albion <subcommand> [options]\n\n"
         "Albion trains and fine-tunes large language models on one or many GPUs, with\n"
         "checkpoints and private data encrypted at rest on declared (UK) storage.\n\n"
         "subcommands:\n";
  for (const Subcommand& command : subcommands()) {
    out << "  " << command.name << std::string(10 - std::string(command.name).size(), ' ')
        << command.summary << "\n";
  }
  out << "\nRun 'albion <subcommand> --help' for its options.\n";
}

}  // namespace

int run_cli(const CommandArgs& argv, const ProcessEnvironment& env) {
  if (argv.size() < 2) {
    print_usage(std::cerr);
    throw UsageError("missing subcommand");
  }
  const std::string& name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_usage(std::cout);
    return 0;
  }
  if (name == "--version") return run_version({}, env);

  CommandArgs rest(argv.begin() + 2, argv.end());
  std::vector<std::string> names;
  for (const Subcommand& command : subcommands()) {
    if (name == command.name) return command.run(rest, env);
    names.emplace_back(command.name);
  }
  std::string hint;
  if (auto near = config::nearest_name(name, names)) hint = str_cat(" (did you mean '", *near, "'?)");
  throw UsageError(str_cat(name.starts_with("-") ? "unknown option '" : "unknown subcommand '",
                           name, "'", hint, "; run 'albion --help' for the list"));
}

}  // namespace albion::launch
