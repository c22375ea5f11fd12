// File: launch/audited_checkpoint.cpp
#include "launch/audited_checkpoint.h"

#include <exception>
#include <memory>
#include <optional>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/format/audited_load.h"
#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/keys/key_provider.h"
#include "launch/ckpt_verbs.h"
#include "runtime/base/check.h"

namespace albion::launch {

namespace fs = std::filesystem;

fs::path resolve_checkpoint(const fs::path& given, const std::string& command) {
  ALBION_CHECK_AS(UsageError, fs::is_directory(given), command, ": ", given.string(), ": no such checkpoint");
  if (fs::exists(given / "manifest.json")) return given;
  const std::optional<checkpoint::CommittedCheckpoint> newest = checkpoint::newest_checkpoint(given);
  ALBION_CHECK_AS(UsageError, newest.has_value(), command, ": ", given.string(),
                  " is neither a checkpoint nor a directory holding one");
  return newest->path;
}

void with_audited_checkpoint(const fs::path& path, const std::string& key_spec, const std::string& audit_log,
                             const ProcessEnvironment& env, const std::string& purpose,
                             const std::function<void(checkpoint::CheckpointReader&)>& use,
                             checkpoint::RankGroup* ranks) {
  std::optional<checkpoint::AuditLog> audit;  // one writer: the chain is hashed line by line
  if (ranks == nullptr || ranks->rank() == 0) {
    audit.emplace(audit_log.empty() ? default_audit_log(path) : fs::path(audit_log),
                  checkpoint::current_audit_identity(env));
  }
  std::exception_ptr failure;
  std::string key_id;
  try {
    std::unique_ptr<checkpoint::KeyProvider> key;
    if (!key_spec.empty()) key = checkpoint::open_key_provider(key_spec);
    key_id = key ? key->key_id() : "";
    checkpoint::CheckpointReader reader(path, key.get());
    use(reader);
  } catch (...) {
    failure = std::current_exception();
  }
  checkpoint::SingleProcessGroup alone;
  checkpoint::settle_audited_load(ranks != nullptr ? *ranks : alone, audit ? &*audit : nullptr, path.string(), key_id,
                                  purpose, failure);
}

}  // namespace albion::launch
