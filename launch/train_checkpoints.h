// File: launch/train_checkpoints.h
// Everything `albion train` needs for checkpoints, set up before the trainer exists: the residency
// check (a checkpoint directory outside the policy's allowed storage, or plaintext the policy does
// not allow, is refused with exit code 2 and an audit record before anything is written), the key
// provider, the run's audit log (run.dir/audit.jsonl) and the trainer hooks.
#pragma once

#include <filesystem>
#include <memory>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/format/rank_group.h"
#include "checkpoint/keys/key_provider.h"
#include "runtime/base/env.h"
#include "runtime/config/recipe.h"
#include "runtime/train/checkpointing.h"

namespace albion::launch {

struct TrainCheckpoints {
  std::unique_ptr<checkpoint::KeyProvider> key;
  std::unique_ptr<checkpoint::AuditLog> audit;
  std::unique_ptr<train::CheckpointHooks> hooks;
};

// The run's audit log, run.dir/audit.jsonl (the directory is created).
std::unique_ptr<checkpoint::AuditLog> open_run_audit_log(const config::Recipe& recipe, const ProcessEnvironment& env);

// The checkpoint directory, resolved, when the residency policy allows it; else a ResidencyError,
// recorded in `audit` when one is given.
std::filesystem::path allowed_checkpoint_directory(const config::Recipe& recipe, checkpoint::AuditLog* audit);

// Null when the recipe asks for no checkpoints (checkpoint.interval = 0). Throws UsageError
// (a ResidencyError for a refused location) on every rank; rank 0 records a refusal.
std::unique_ptr<TrainCheckpoints> make_train_checkpoints(const config::Recipe& recipe, const ProcessEnvironment& env,
                                                         checkpoint::RankGroup& group);

}  // namespace albion::launch
