// File: launch/command_keys.cpp
// `albion keys`: planned (issue #6).
#include "launch/command_planned.h"

namespace albion::launch {

int run_keys(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"keys", "albion keys generate --out FILE",
                             "Generate a 256-bit key-encryption key in a file readable only by its\n"
                             "owner."},
                            6, "sovereign checkpoints: key providers"});
}

}  // namespace albion::launch
