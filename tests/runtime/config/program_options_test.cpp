// File: tests/runtime/config/program_options_test.cpp
#include <gtest/gtest.h>

#include <cstdint>

#include "runtime/base/error.h"
#include "runtime/config/program_options.h"

namespace albion::config {
namespace {

po::options_description example_options() {
  po::options_description options("options");
  options.add_options()("steps", po::value<int>()->default_value(10), "number of steps")(
      "collectives", "flag")("input", po::value<std::vector<std::string>>(), "inputs");
  return options;
}

std::string usage_error_of(const std::vector<std::string>& args) {
  po::positional_options_description positional;
  positional.add("input", 1);
  try {
    parse_options(args, example_options(), positional, "demo");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(ParseOptions, ParsesValuesPositionalsAndPassthrough) {
  po::positional_options_description positional;
  positional.add("input", -1);
  ParsedOptions parsed = parse_options({"--steps=3", "a.txt", "--", "train", "--steps=9"},
                                       example_options(), positional, "demo");
  EXPECT_EQ(parsed.values["steps"].as<int>(), 3);
  EXPECT_EQ(parsed.values["input"].as<std::vector<std::string>>(), std::vector<std::string>{"a.txt"});
  EXPECT_EQ(parsed.passthrough, (std::vector<std::string>{"train", "--steps=9"}));
}

TEST(ParseOptions, UnknownOptionSuggestsTheNearestAndNamesTheContext) {
  EXPECT_EQ(usage_error_of({"--stesp=3"}),
            "demo: unknown option '--stesp' (did you mean '--steps'?)");
  EXPECT_EQ(usage_error_of({"--unrelated"}), "demo: unknown option '--unrelated'");
}

TEST(ParseOptions, PrefixesAreNotGuessed) {
  // Guessing "--col" as "--collectives" would make adding an option a breaking change.
  EXPECT_NE(usage_error_of({"--col"}), "");
}

TEST(ParseOptions, BadValuesAndExtraArgumentsAreUsageErrors) {
  EXPECT_NE(usage_error_of({"--steps=ten"}).find("steps"), std::string::npos);
  EXPECT_EQ(usage_error_of({"a", "b"}), "demo: too many arguments");
}

TEST(ParseOptions, NegativeValuesOfUnsignedOptionsAreRefused) {
  // Boost's own conversion wraps "-1" to 2^64 - 1 and reports nothing.
  std::uint64_t seed = 0;
  po::options_description options("options");
  options.add_options()("seed", po::value(&seed), "seed");
  for (const std::string arg : {"--seed=-1", "--seed= -2"}) {
    try {
      parse_options({arg}, options, {}, "demo");
      ADD_FAILURE() << arg << " was accepted as " << seed;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("'--seed' must not be negative"), std::string::npos) << e.what();
    }
  }
  parse_options({"--seed=18446744073709551615"}, options, {}, "demo");
  EXPECT_EQ(seed, 18446744073709551615ULL);
}

TEST(LongOptionNames, ListsEveryOption) {
  EXPECT_EQ(long_option_names(example_options()),
            (std::vector<std::string>{"--steps", "--collectives", "--input"}));
}

}  // namespace
}  // namespace albion::config
