// File: runtime/config/program_options.h
// Boost.Program_options with Albion's error contract: every parse failure becomes a one-line
// UsageError naming the option ("unknown option '--stesp' (did you mean '--steps'?)"), so the
// CLI and recipe parsers report bad input the same way.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

namespace albion::config {

namespace po = boost::program_options;

struct ParsedOptions {
  po::variables_map values;
  // Arguments after a literal "--", untouched (e.g. the command `albion launch` runs).
  std::vector<std::string> passthrough;
};

// Parses `args` (without the program/subcommand name) against `options`; `positional` names
// options that take bare arguments. `context` prefixes messages, e.g. "albion train".
ParsedOptions parse_options(const std::vector<std::string>& args,
                            const po::options_description& options,
                            const po::positional_options_description& positional,
                            const std::string& context);

// Boost's conversion wraps "-1" given to an unsigned option to 2^64 - 1; this throws a po::error
// naming the option instead. `name_prefix` is "--" on a command line and "" in an INI file.
void refuse_negative_unsigned(const po::parsed_options& parsed, const std::string& name_prefix);

// Boost's message for `e`, with the user's text in it taken verbatim. Boost itself substitutes a
// value into its message template until the placeholder is gone, so a value that contains its own
// placeholder ("--train.steps=%value%") never returned (found by fuzz/recipe_fuzzer.cpp).
std::string program_options_message(const po::error& e);

// Every long option name in `options`, with its leading "--", for suggestions and tests.
std::vector<std::string> long_option_names(const po::options_description& options);

}  // namespace albion::config
