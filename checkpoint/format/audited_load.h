// File: checkpoint/format/audited_load.h
// The end of a load that every rank of a job does in part (a resume, `eval`, `generate`): the
// ranks agree on its outcome, rank 0 records it in the audit log, and a failure is thrown on every
// rank alike (rank_group.h), so the log holds one record per load and no rank is left waiting.
#pragma once

#include <exception>
#include <string>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/format/rank_group.h"

namespace albion::checkpoint {

// Collective over `ranks`, each having loaded its part of the checkpoint at `path` (`failure`: its
// error, null if it succeeded). `audit`, where given (rank 0's), records the agreed outcome: ok with
// `ok_detail`, or failed with the first failing rank's error. Then every rank throws that failure
// (throw_agreed_failure); nothing on success.
void settle_audited_load(RankGroup& ranks, AuditLog* audit, const std::string& path, const std::string& key_id,
                         const std::string& ok_detail, const std::exception_ptr& failure);

}  // namespace albion::checkpoint
