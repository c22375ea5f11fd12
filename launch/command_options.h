// File: launch/command_options.h
// Shared option handling for subcommands: every subcommand gets --help from here, and its usage
// and options text come from the same options_description the parser uses, so they cannot drift.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "launch/cli.h"
#include "runtime/config/program_options.h"

namespace albion::launch {

namespace po = boost::program_options;

struct CommandSpec {
  std::string name;         // "doctor"
  std::string usage;        // "albion doctor [--collectives]"
  std::string description;  // a paragraph shown under the usage line
};

// Whether `args` ask for help (--help or -h anywhere).
bool asks_for_help(std::span<const std::string> args);

// Adds --help to `options` and parses `args`. Returns nullopt after printing help to stdout when
// --help/-h was given; throws UsageError (naming the subcommand) for bad options.
std::optional<config::ParsedOptions> parse_command(const CommandArgs& args, const CommandSpec& spec,
                                                   po::options_description options,
                                                   const po::positional_options_description& positional = {});

// What `train` takes, and `submit` after its `-- train`: RECIPE.ini [--section.key=value ...]
// [--dry-run]. Parsing stops at --help or -h. A second recipe is a UsageError naming `command`;
// a missing one is left to the caller, whose hint differs.
struct TrainArguments {
  std::string recipe;
  std::vector<std::string> overrides;
  bool dry_run = false;
  bool help = false;
};
TrainArguments parse_train_arguments(std::span<const std::string> args, const std::string& command);

// The help text of a subcommand, as --help prints it.
std::string command_help(const CommandSpec& spec, const po::options_description& options);

}  // namespace albion::launch
