// File: launch/command_planned.cpp
#include "launch/command_planned.h"

#include <iostream>

#include "runtime/base/check.h"

namespace albion::launch {

int run_planned(const CommandArgs& args, const PlannedCommand& planned) {
  for (const std::string& arg : args) {
    if (arg == "--") break;
    if (arg == "--help" || arg == "-h") {
      std::cout << "usage: " << planned.spec.usage << "\n\n"
                << planned.spec.description << "\n\n"
                << "Status: not implemented yet (issue #" << planned.issue << ": "
                << planned.capability << ").\n";
      return static_cast<int>(ExitCode::kFailure);
    }
  }
  throw NotImplementedError(str_cat("'albion ", planned.spec.name, "' is not implemented yet (issue #",
                                    planned.issue, ": ", planned.capability, ")"));
}

}  // namespace albion::launch
