// File: checkpoint/audit/audit_record.h
// One audit record: who (host, user, rank) did what (action) to which path, with which key (its
// id, never the key), when (UTC), and how it ended. Serialised as one JSON object per line whose
// "prev" field is the SHA-256 (hex) of the previous line's bytes (Note [Audit chain]).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "runtime/base/env.h"

namespace albion::checkpoint {

enum class AuditAction { kSave, kLoad, kVerify, kExport, kKeyRotation, kKeyGeneration, kRefusal };
enum class AuditOutcome { kOk, kFailed, kRefused };

const char* audit_action_name(AuditAction action);    // "save", ..., "key-rotation", "refusal"
const char* audit_outcome_name(AuditOutcome outcome);  // "ok", "failed", "refused"
std::optional<AuditAction> parse_audit_action(std::string_view name);
std::optional<AuditOutcome> parse_audit_outcome(std::string_view name);

// What happened; the caller fills it in.
struct AuditEvent {
  AuditAction action = AuditAction::kSave;
  std::string path;    // the checkpoint, export or key file concerned
  std::string key_id;  // the KEK's id (Note [Key id]); empty when no key was involved
  AuditOutcome outcome = AuditOutcome::kOk;
  std::string detail;  // optional, e.g. the refusal's one-line reason; never key material
};

// Who writes the records: fixed for a process.
struct AuditIdentity {
  std::string host;
  std::string user;  // from the password database for the effective uid, not from $USER
  int rank = 0;
};
AuditIdentity current_audit_identity(const ProcessEnvironment& env);

// Note [Audit chain]
// Record n's "prev" is the SHA-256 of record n-1's line exactly as stored (its bytes, without the
// newline); record 1's "prev" is kAuditGenesis. Editing, deleting, inserting or reordering any
// record therefore breaks the chain at the next record. The chain alone cannot notice the newest
// records being removed or the last one rewritten: anchor the head hash (printed by
// `albion ckpt audit`, to be stored in checkpoint manifests) where an attacker cannot change it.
inline constexpr std::string_view kAuditGenesis =
    "0000000000000000000000000000000000000000000000000000000000000000";

// The record's line (no newline): {"prev","time","host","user","rank","action","path","key_id",
// "outcome"[,"detail"]}. `utc_time` is ISO 8601 with milliseconds, e.g. "2026-11-22T08:19:11.123Z".
std::string audit_record_line(std::string_view prev, std::string_view utc_time,
                              const AuditIdentity& identity, const AuditEvent& event);

std::string utc_timestamp_now();
bool is_utc_timestamp(std::string_view text);

}  // namespace albion::checkpoint
