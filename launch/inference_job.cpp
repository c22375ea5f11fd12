// File: launch/inference_job.cpp
#include "launch/inference_job.h"

#include <optional>

#include "launch/fatal_handler.h"
#include "launch/mpi_rank_group.h"
#include "launch/mpi_session.h"
#include "launch/rank_threads.h"
#include "runtime/device.h"

namespace albion::launch {

int run_inference_job(const c10::Device& device, int tensor,
                      const std::function<int(checkpoint::RankGroup& job, const collectives::ProcessGroups&)>& body) {
  MpiSession session;
  // Outside the try: on an error, report_fatal aborts every rank before these destructors could
  // wait in a collective for a peer that is gone.
  std::optional<collectives::ProcessGroups> groups;
  std::optional<MpiRankGroup> job;
  try {
    job.emplace(session.world());
    collectives::BootstrapOptions options;
    options.use_cuda = device.is_cuda();
    options.cuda_devices = static_cast<int>(runtime::probe_compute().devices.size());
    options.tensor = tensor;
    groups = collectives::bootstrap(session.world(), options);
    share_cores_among_local_ranks(groups->world.local_size);
    return body(*job, *groups);
  } catch (...) {
    return report_fatal(std::current_exception());
  }
}

}  // namespace albion::launch
