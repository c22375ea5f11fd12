// File: launch/command_keys.cpp
// `albion keys generate --out FILE [--force]`: creates a 256-bit key-encryption key for the
// `file:PATH` key provider. The key is written atomically with mode 0600 and never printed; the
// command prints the key's id (Note [Key id] in checkpoint/keys/key_id.h).
#include <iostream>

#include "checkpoint/keys/key_file.h"
#include "launch/cli.h"
#include "launch/command_options.h"
#include "runtime/base/check.h"
#include "runtime/config/nearest_name.h"

namespace albion::launch {
namespace {

constexpr const char* kGenerateUsage = "albion keys generate --out FILE [--force]";
constexpr const char* kGenerateDescription =
    "Generate a 256-bit key-encryption key: 32 random bytes in FILE, created with mode 0600\n"
    "(readable by its owner only) and never printed. Prints the key id, a fingerprint that\n"
    "checkpoints and the audit log record. Use the key as --key file:FILE.";

struct GenerateOptions {
  std::string out;
  bool force = false;
};

po::options_description generate_options(GenerateOptions& values) {
  po::options_description options("options");
  options.add_options()
      ("out", po::value(&values.out)->value_name("FILE"), "the key file to create")
      ("force", po::bool_switch(&values.force),
       "replace FILE if it exists (checkpoints wrapped with the old key become unreadable)");
  return options;
}

int run_generate(const CommandArgs& args) {
  GenerateOptions values;
  const CommandSpec spec{"keys generate", kGenerateUsage, kGenerateDescription};
  if (!parse_command(args, spec, generate_options(values))) return 0;
  // Checked here, not with po::required(), so that --help works without --out.
  ALBION_CHECK_AS(UsageError, !values.out.empty(), "keys generate: missing --out FILE");
  const std::string id = checkpoint::generate_key_file(
      values.out, values.force ? checkpoint::KeyFileOverwrite::kReplace : checkpoint::KeyFileOverwrite::kRefuse);
  std::cout << "wrote a new 256-bit key to " << values.out << " (mode 0600)\n"
            << "key id: " << id << "\n";
  return 0;
}

}  // namespace

int run_keys(const CommandArgs& args, const ProcessEnvironment&) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    GenerateOptions unused;
    std::cout << command_help({"keys", kGenerateUsage, kGenerateDescription}, generate_options(unused));
    if (args.empty()) throw UsageError("keys: missing verb (generate)");
    return 0;
  }
  const CommandArgs rest(args.begin() + 1, args.end());
  if (args[0] == "generate") return run_generate(rest);
  std::string hint;
  if (auto near = config::nearest_name(args[0], {"generate"})) hint = str_cat(" (did you mean '", *near, "'?)");
  throw UsageError(str_cat("keys: unknown verb '", args[0], "'", hint, "; expected generate"));
}

}  // namespace albion::launch
