// File: launch/command_options.cpp
#include "launch/command_options.h"

#include <iostream>
#include <sstream>

#include "runtime/base/check.h"

namespace albion::launch {

bool asks_for_help(std::span<const std::string> args) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") return true;
  }
  return false;
}

TrainArguments parse_train_arguments(std::span<const std::string> args, const std::string& command) {
  TrainArguments parsed;
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      parsed.help = true;
      return parsed;
    }
    if (arg == "--dry-run") {
      parsed.dry_run = true;
    } else if (arg.starts_with("--")) {
      parsed.overrides.push_back(arg);
    } else {
      ALBION_CHECK_AS(UsageError, parsed.recipe.empty(), command, ": more than one recipe given ('", parsed.recipe,
                      "' and '", arg, "')");
      parsed.recipe = arg;
    }
  }
  return parsed;
}

std::string command_help(const CommandSpec& spec, const po::options_description& options) {
  std::ostringstream out;
  out << "usage: " << spec.usage << "\n\n" << spec.description << "\n\n" << options;
  return out.str();
}

std::optional<config::ParsedOptions> parse_command(const CommandArgs& args, const CommandSpec& spec,
                                                   po::options_description options,
                                                   const po::positional_options_description& positional) {
  options.add_options()("help,h", "show this help and exit");
  config::ParsedOptions parsed =
      config::parse_options(args, options, positional, spec.name);
  if (parsed.values.count("help")) {
    std::cout << command_help(spec, options);
    return std::nullopt;
  }
  return parsed;
}

}  // namespace albion::launch
