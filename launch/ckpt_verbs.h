// File: launch/ckpt_verbs.h
// The verbs of `albion ckpt` (command_ckpt.cpp dispatches): each parses its own options and
// returns the exit code. Integrity failures throw IntegrityError (exit 3), usage errors
// UsageError (exit 2).
#pragma once

#include <filesystem>

#include "launch/cli.h"
#include "launch/command_options.h"

namespace albion::launch {

// The audit log of the run directory holding `checkpoint` (RUN/checkpoints/step-N): RUN/audit.jsonl.
std::filesystem::path default_audit_log(const std::filesystem::path& checkpoint);

int run_ckpt_list(const CommandArgs& args, const CommandSpec& spec);
int run_ckpt_inspect(const CommandArgs& args, const CommandSpec& spec);
int run_ckpt_verify(const CommandArgs& args, const CommandSpec& spec);
int run_ckpt_rotate_key(const CommandArgs& args, const CommandSpec& spec);
int run_ckpt_export(const CommandArgs& args, const CommandSpec& spec);  // ckpt_export.cpp

}  // namespace albion::launch
