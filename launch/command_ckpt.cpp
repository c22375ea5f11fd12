// File: launch/command_ckpt.cpp
// `albion ckpt`: planned (issue #6).
#include "launch/command_planned.h"

namespace albion::launch {

int run_ckpt(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"ckpt", "albion ckpt list|inspect|verify|rotate-key|export|audit ...",
                             "Manage encrypted checkpoints: list, inspect, verify every chunk,\n"
                             "re-wrap keys, export to safetensors, verify the audit log."},
                            6, "sovereign checkpoints"});
}

}  // namespace albion::launch
