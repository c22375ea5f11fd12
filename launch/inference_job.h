// File: launch/inference_job.h
// What `albion eval` and `albion generate` share when `albion launch` starts them on many ranks:
// the MPI session, the device mesh (data x tensor, its communicators and watchdog) and a rank group
// over which the job's load is audited once (launch/audited_checkpoint.h).
#pragma once

#include <c10/core/Device.h>

#include <functional>

#include "checkpoint/format/rank_group.h"
#include "collectives/bootstrap.h"

namespace albion::launch {

// Runs `body` on every rank of the job, with the model to be cut over `tensor` ranks and computed
// on `device`, and returns its exit code. An error ends the job (report_fatal); a JobError, which
// every rank raises together, ends it without MPI_Abort.
int run_inference_job(const c10::Device& device, int tensor,
                      const std::function<int(checkpoint::RankGroup& job, const collectives::ProcessGroups&)>& body);

}  // namespace albion::launch
