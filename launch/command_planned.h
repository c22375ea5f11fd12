// File: launch/command_planned.h
// For subcommands (or verbs of one) whose issues have not landed: --help shows the planned
// interface and says plainly that it is not implemented; running it fails with exit code 1.
#pragma once

#include "launch/cli.h"
#include "launch/command_options.h"

namespace albion::launch {

struct PlannedCommand {
  CommandSpec spec;
  int issue;               // the issue that builds it
  const char* capability;  // what that issue is about, in a few words
};

int run_planned(const CommandArgs& args, const PlannedCommand& planned);

}  // namespace albion::launch
