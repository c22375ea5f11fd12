// File: launch/audited_checkpoint.cpp
#include "launch/audited_checkpoint.h"

#include <exception>
#include <memory>
#include <optional>
#include <vector>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/keys/key_provider.h"
#include "launch/ckpt_verbs.h"
#include "launch/fatal_handler.h"
#include "runtime/base/check.h"

namespace albion::launch {

namespace fs = std::filesystem;
using checkpoint::AuditAction;
using checkpoint::AuditOutcome;

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
  std::string error;
  ExitCode code = ExitCode::kFailure;
  std::string key_id;
  try {
    std::unique_ptr<checkpoint::KeyProvider> key;
    if (!key_spec.empty()) key = checkpoint::open_key_provider(key_spec);
    key_id = key ? key->key_id() : "";
    checkpoint::CheckpointReader reader(path, key.get());
    use(reader);
  } catch (const std::exception& e) {
    failure = std::current_exception();
    error = *e.what() != '\0' ? e.what() : "failed";
    if (const auto* known = dynamic_cast<const Error*>(&e)) code = known->exit_code();
  }
  const bool job = ranks != nullptr && ranks->size() > 1;
  if (job) {
    // Rank 0 learns every rank's outcome ("" for a rank that loaded its part, else its exit code
    // and error) and tells them all the first failure.
    const std::vector<std::string> outcomes =
        ranks->gather(failure ? str_cat(static_cast<int>(code), error) : std::string());
    std::string first;
    for (std::size_t rank = 0; rank < outcomes.size() && first.empty(); ++rank) {
      if (!outcomes[rank].empty()) {
        first = rank == 0 ? outcomes[rank] : str_cat(outcomes[rank][0], "rank ", rank, ": ", outcomes[rank].substr(1));
      }
    }
    first = ranks->broadcast(first);
    code = first.empty() ? ExitCode::kOk : static_cast<ExitCode>(first[0] - '0');
    error = first.empty() ? "" : first.substr(1);
  }
  if (audit) {
    audit->append({AuditAction::kLoad, path.string(), key_id, error.empty() ? AuditOutcome::kOk : AuditOutcome::kFailed,
                   error.empty() ? purpose : error});
  }
  if (job && !error.empty()) throw JobError(error, code, ranks->rank() == 0);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace albion::launch
