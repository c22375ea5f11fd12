// File: launch/host_reachability.h
// Before `albion launch` starts a job on other hosts: every host must resolve and greet as an ssh
// server on its ssh port (OpenMPI's mpirun starts remote ranks over ssh), so an unreachable or
// misspelt host is a clear error, not a hang inside mpirun.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "launch/launch_plan.h"

namespace albion::launch {

// UsageError naming the first host that does not resolve or answer. Hosts naming this machine
// (localhost, its hostname) are not probed.
void require_reachable(const std::vector<HostSlots>& hosts, const std::string& local_hostname,
                       std::chrono::milliseconds timeout = std::chrono::seconds(3), int port = 22);

}  // namespace albion::launch
