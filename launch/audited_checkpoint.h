// File: launch/audited_checkpoint.h
// What the commands that run a checkpoint's model (`generate`, `eval`) share: finding the
// checkpoint a user names, and opening it with its key so that the load is recorded in the audit
// log whether it succeeds or fails.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/format/rank_group.h"
#include "runtime/base/env.h"

namespace albion::launch {

// `given` if it is a step-N checkpoint, or the newest committed checkpoint in the directory
// `given`; a UsageError starting with `command` otherwise.
std::filesystem::path resolve_checkpoint(const std::filesystem::path& given, const std::string& command);

// Opens `path` with the key `key_spec` (none for a plaintext checkpoint) and runs `use` on its
// reader. The load is appended to `audit_log` (the run's, beside its checkpoints, when empty): ok
// with `purpose`, or failed with the error, which is then rethrown. With `ranks` (collective: every
// rank of a job loads its part), rank 0 appends one record for them all: ok, or failed with the
// first failing rank's error, which every rank then throws as a JobError that rank 0 reports.
void with_audited_checkpoint(const std::filesystem::path& path, const std::string& key_spec,
                             const std::string& audit_log, const ProcessEnvironment& env, const std::string& purpose,
                             const std::function<void(checkpoint::CheckpointReader&)>& use,
                             checkpoint::RankGroup* ranks = nullptr);

}  // namespace albion::launch
