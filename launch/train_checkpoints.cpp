// File: launch/train_checkpoints.cpp
#include "launch/train_checkpoints.h"

#include "checkpoint/residency/residency_policy.h"
#include "runtime/base/check.h"
#include "runtime/config/recipe.h"

namespace albion::launch {

namespace fs = std::filesystem;

fs::path allowed_checkpoint_directory(const config::Recipe& recipe, checkpoint::AuditLog* audit) {
  const config::CheckpointConfig& c = recipe.checkpoint;
  const fs::path directory = fs::path(c.dir).is_absolute() ? fs::path(c.dir) : fs::path(recipe.run.dir) / c.dir;
  try {
    const checkpoint::ResidencyPolicy policy = checkpoint::ResidencyPolicy::load(c.policy);
    return policy.require_allowed(directory, checkpoint::StoragePurpose::kCheckpoint, c.plaintext);
  } catch (const checkpoint::ResidencyError& refusal) {
    if (audit != nullptr) {
      audit->append({checkpoint::AuditAction::kRefusal, directory.string(), "", checkpoint::AuditOutcome::kRefused,
                     refusal.what()});
    }
    throw;
  }
}

std::unique_ptr<checkpoint::AuditLog> open_run_audit_log(const config::Recipe& recipe, const ProcessEnvironment& env) {
  fs::create_directories(recipe.run.dir);
  return std::make_unique<checkpoint::AuditLog>(fs::path(recipe.run.dir) / "audit.jsonl",
                                                checkpoint::current_audit_identity(env));
}

std::unique_ptr<TrainCheckpoints> make_train_checkpoints(const config::Recipe& recipe, const ProcessEnvironment& env,
                                                         checkpoint::RankGroup& group) {
  const config::CheckpointConfig& c = recipe.checkpoint;
  if (c.interval == 0) return nullptr;
  auto out = std::make_unique<TrainCheckpoints>();
  if (group.rank() == 0) out->audit = open_run_audit_log(recipe, env);  // it records even a refusal
  const fs::path allowed = allowed_checkpoint_directory(recipe, out->audit.get());
  if (!c.plaintext) out->key = checkpoint::open_key_provider(c.key);

  train::CheckpointSettings settings;
  settings.options.directory = allowed;
  settings.options.key = out->key.get();
  settings.options.keep = static_cast<int>(c.keep);
  settings.options.shard.threads = static_cast<int>(c.threads);
  settings.options.audit = out->audit.get();
  settings.interval = c.interval;
  settings.async = c.async;
  settings.recipe_ini = config::resolved_recipe_ini(recipe);
  out->hooks = std::make_unique<train::CheckpointHooks>(std::move(settings), group);
  return out;
}

}  // namespace albion::launch
