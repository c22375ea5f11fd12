// File: checkpoint/audit/audit_verify.h
// Verifies an audit log: every line a well-formed record (JSON object, the expected fields and
// types, a known action and outcome, a UTC timestamp), and every "prev" the SHA-256 of the line
// before (Note [Audit chain]). Reports the first bad line and why; never stops at a crash.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

#include "runtime/base/error.h"

namespace albion::checkpoint {

struct AuditProblem {
  std::size_t line = 0;  // 1-based
  std::string reason;
};

struct AuditVerification {
  std::size_t records = 0;  // good records before the first problem (all of them when none)
  std::string head;         // SHA-256 of the last good line (the genesis value for an empty log)
  std::string first_time;   // of the first and last good records
  std::string last_time;
  std::optional<AuditProblem> problem;
};

// Reads and checks `path`. Throws UsageError when it cannot be opened; a bad log is reported in
// the result, not thrown.
AuditVerification verify_audit_log(const std::filesystem::path& path);

}  // namespace albion::checkpoint
