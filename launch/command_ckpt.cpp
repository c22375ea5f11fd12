// File: launch/command_ckpt.cpp
// `albion ckpt <verb>`: checkpoint tools. `audit LOG` verifies an audit log's hash chain (exit 0,
// or 3 naming the first bad line); list, inspect, verify, rotate-key and export are in
// ckpt_verbs.cpp and ckpt_export.cpp.
#include <iostream>

#include "checkpoint/audit/audit_verify.h"
#include "launch/cli.h"
#include "launch/ckpt_verbs.h"
#include "launch/command_options.h"
#include "runtime/base/check.h"
#include "runtime/config/nearest_name.h"

namespace albion::launch {
namespace {

using VerbHandler = int (*)(const CommandArgs& args, const CommandSpec& spec);

struct Verb {
  const char* name;
  const char* usage;
  const char* description;
  VerbHandler run;
};

int run_audit(const CommandArgs& args, const CommandSpec& spec);

const Verb kVerbs[] = {
    {"audit", "albion ckpt audit LOG",
     "Verify a tamper-evident audit log: every record well-formed and chained to the one\n"
     "before it by SHA-256. Exit 0 with a summary when the chain is intact; exit 3 naming the\n"
     "first bad line otherwise. Record the printed head hash elsewhere to detect later\n"
     "removal of the newest records.",
     run_audit},
    {"list", "albion ckpt list DIR",
     "List the committed checkpoints in a checkpoint directory (run.dir/checkpoints) with their\n"
     "step, cipher, shard count, size and time; `latest` is marked. No key needed.",
     run_ckpt_list},
    {"inspect", "albion ckpt inspect CKPT [--key SPEC]",
     "Show a checkpoint's public header (no key needed); with its key, authenticate the manifest\n"
     "and show the world layout, trainer state, shards and tensor index.",
     run_ckpt_inspect},
    {"verify", "albion ckpt verify CKPT --key SPEC",
     "Authenticate the manifest, every shard's SHA-256 and every chunk's tag. Exit 0 when all\n"
     "verify; exit 3 naming the file and the check that failed otherwise. Audited.",
     run_ckpt_verify},
    {"rotate-key", "albion ckpt rotate-key CKPT --key OLD --new-key NEW",
     "Re-wrap the checkpoint's data key under a new key-encryption key, after authenticating\n"
     "the checkpoint under the old one. No data is re-encrypted; manifest.json is replaced\n"
     "atomically. Audited.",
     run_ckpt_rotate_key},
    {"export", "albion ckpt export CKPT --format safetensors|peft --out DIR --key SPEC --policy FILE",
     "Decrypt the model's weights into a Hugging Face layout (model.safetensors and\n"
     "config.json; a LoRA checkpoint's adapters merged into their base), with the files of the\n"
     "tokenizer it was trained with (tokenizer.json, vocab.json and merges.txt, or tokenizer.model)\n"
     "while they are unchanged, a chat fine-tune's template (tokenizer_config.json) and the\n"
     "recipe's sampling (generation_config.json), or, with --format peft,\n"
     "a LoRA checkpoint's adapters alone as PEFT writes them (adapter_model.safetensors and\n"
     "adapter_config.json), in DIR, which the residency policy must allow (refused with exit\n"
     "code 2 and an audit record otherwise). Audited.",
     run_ckpt_export},
};

int run_audit(const CommandArgs& args, const CommandSpec& spec) {
  std::string log;
  po::options_description options("options");
  options.add_options()("log", po::value(&log)->value_name("LOG"), "the audit log (JSONL)");
  po::positional_options_description positional;
  positional.add("log", 1);
  if (!parse_command(args, spec, options, positional)) return 0;
  // Checked here, not with po::required(), so that --help works without LOG.
  ALBION_CHECK_AS(UsageError, !log.empty(), "ckpt audit: missing LOG (usage: ", spec.usage, ")");

  const checkpoint::AuditVerification result = checkpoint::verify_audit_log(log);
  if (result.problem) {
    throw IntegrityError(str_cat("audit log '", log, "' line ", result.problem->line, ": ",
                                 result.problem->reason, " (", result.records,
                                 " record(s) before it verify)"));
  }
  std::cout << "audit log " << log << ": " << result.records << " record(s), hash chain intact\n";
  if (result.records > 0) {
    std::cout << "  first record  " << result.first_time << "\n"
              << "  last record   " << result.last_time << "\n";
  }
  std::cout << "  head sha256   " << result.head << "\n";
  return 0;
}

void print_usage() {
  std::cout << "usage: albion ckpt <verb> ...\n\n"
               "Manage encrypted checkpoints and verify the audit log.\n\nverbs:\n";
  for (const Verb& verb : kVerbs) {
    std::cout << "  " << verb.usage << "\n";
  }
  std::cout << "\nRun 'albion ckpt <verb> --help' for its options.\n";
}

}  // namespace

int run_ckpt(const CommandArgs& args, const ProcessEnvironment&) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    print_usage();
    if (args.empty()) throw UsageError("ckpt: missing verb (audit, list, inspect, verify, rotate-key or export)");
    return 0;
  }
  const CommandArgs rest(args.begin() + 1, args.end());
  std::vector<std::string> names;
  for (const Verb& verb : kVerbs) {
    if (args[0] == verb.name) {
      return verb.run(rest, {str_cat("ckpt ", verb.name), verb.usage, verb.description});
    }
    names.emplace_back(verb.name);
  }
  std::string hint;
  if (auto near = config::nearest_name(args[0], names)) hint = str_cat(" (did you mean '", *near, "'?)");
  throw UsageError(str_cat("ckpt: unknown verb '", args[0], "'", hint,
                           "; expected audit, list, inspect, verify, rotate-key or export"));
}

}  // namespace albion::launch
