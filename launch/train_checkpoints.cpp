// File: launch/train_checkpoints.cpp
#include "launch/train_checkpoints.h"

#include "checkpoint/residency/residency_policy.h"
#include "runtime/base/check.h"
#include "runtime/config/recipe.h"

namespace albion::launch {

namespace fs = std::filesystem;

std::unique_ptr<TrainCheckpoints> make_train_checkpoints(const config::Recipe& recipe, const ProcessEnvironment& env,
                                                         checkpoint::RankGroup& group) {
  const config::CheckpointConfig& c = recipe.checkpoint;
  if (c.interval == 0) return nullptr;
  auto out = std::make_unique<TrainCheckpoints>();
  const fs::path run_dir = recipe.run.dir;
  const fs::path directory = fs::path(c.dir).is_absolute() ? fs::path(c.dir) : run_dir / c.dir;
  if (group.rank() == 0) {
    fs::create_directories(run_dir);  // the audit log records even a refusal
    out->audit = std::make_unique<checkpoint::AuditLog>(run_dir / "audit.jsonl", checkpoint::current_audit_identity(env));
  }
  fs::path allowed;
  try {
    const checkpoint::ResidencyPolicy policy = checkpoint::ResidencyPolicy::load(c.policy);
    allowed = policy.require_allowed(directory, checkpoint::StoragePurpose::kCheckpoint, c.plaintext);
  } catch (const checkpoint::ResidencyError& refusal) {
    if (out->audit) {
      out->audit->append({checkpoint::AuditAction::kRefusal, directory.string(), "", checkpoint::AuditOutcome::kRefused,
                          refusal.what()});
    }
    throw;
  }
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
