// File: checkpoint/format/audited_load.cpp
#include "checkpoint/format/audited_load.h"

namespace albion::checkpoint {

void settle_audited_load(RankGroup& ranks, AuditLog* audit, const std::string& path, const std::string& key_id,
                         const std::string& ok_detail, const std::exception_ptr& failure) {
  const JobOutcome outcome = agree_on_outcome(ranks, failure);
  if (audit != nullptr) {
    audit->append({AuditAction::kLoad, path, key_id, outcome.failed() ? AuditOutcome::kFailed : AuditOutcome::kOk,
                   outcome.failed() ? outcome.error : ok_detail});
  }
  throw_agreed_failure(ranks, outcome, failure);
}

}  // namespace albion::checkpoint
