// File: launch/cli.h
// The `albion` command line: a table of subcommands, each a small function in its own file
// (launch/command_*.cpp) that parses its own options with Boost.Program_options and owns its
// --help. Dispatch, the usage text and unknown-subcommand errors live in cli.cpp.
#pragma once

#include <string>
#include <vector>

#include "runtime/base/env.h"

namespace albion::launch {

using CommandArgs = std::vector<std::string>;
using CommandHandler = int (*)(const CommandArgs& args, const ProcessEnvironment& env);

struct Subcommand {
  const char* name;
  const char* summary;
  CommandHandler run;
};

const std::vector<Subcommand>& subcommands();

// Parses argv, runs the subcommand, returns the process exit code. Errors propagate as exceptions
// to launch/fatal_handler.h.
int run_cli(const CommandArgs& argv, const ProcessEnvironment& env);

// The subcommands' entry points.
int run_version(const CommandArgs& args, const ProcessEnvironment& env);
int run_doctor(const CommandArgs& args, const ProcessEnvironment& env);
int run_train(const CommandArgs& args, const ProcessEnvironment& env);
int run_launch(const CommandArgs& args, const ProcessEnvironment& env);
int run_submit(const CommandArgs& args, const ProcessEnvironment& env);
int run_data(const CommandArgs& args, const ProcessEnvironment& env);
int run_ckpt(const CommandArgs& args, const ProcessEnvironment& env);
int run_keys(const CommandArgs& args, const ProcessEnvironment& env);
int run_generate(const CommandArgs& args, const ProcessEnvironment& env);
int run_eval(const CommandArgs& args, const ProcessEnvironment& env);

// Refuse once, before `albion launch` starts `world_size` ranks of them, an eval or generate
// command each rank would refuse: a bad option, a checkpoint or dataset that is not there, or an
// eval --tensor that does not divide the ranks.
void check_eval_command(const CommandArgs& args, int world_size);
void check_generate_command(const CommandArgs& args);

}  // namespace albion::launch
