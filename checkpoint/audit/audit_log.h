// File: checkpoint/audit/audit_log.h
// The append side of the tamper-evident audit log (Note [Audit chain] in audit_record.h).
// Appends are atomic with respect to other processes and ranks: the file is opened O_APPEND,
// locked with flock(LOCK_EX) while the previous line is hashed and the new one written with a
// single write(), then fsync'd before the lock is released. The file is created with mode 0600.
//
//   AuditLog audit(run_dir / "audit.jsonl", current_audit_identity(env));
//   audit.append({AuditAction::kSave, ckpt_path, provider.key_id(), AuditOutcome::kOk});
#pragma once

#include <filesystem>
#include <string>

#include "checkpoint/audit/audit_record.h"
#include "runtime/base/error.h"

namespace albion::checkpoint {

class AuditLog {
 public:
  AuditLog(std::filesystem::path path, AuditIdentity identity);

  const std::filesystem::path& path() const { return path_; }

  // Appends one record and returns its line's SHA-256 (the new head of the chain). Throws
  // IntegrityError, writing nothing, if the log ends in a partial line: chaining onto a damaged
  // record would hide the damage.
  std::string append(const AuditEvent& event);

 private:
  std::filesystem::path path_;
  AuditIdentity identity_;
};

}  // namespace albion::checkpoint
