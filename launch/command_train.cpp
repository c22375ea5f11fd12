// File: launch/command_train.cpp
// `albion train`: planned (issue #4).
#include "launch/command_planned.h"

namespace albion::launch {

int run_train(const CommandArgs& args, const ProcessEnvironment&) {
  return run_planned(args, {{"train", "albion train RECIPE.ini [--section.key=value ...]",
                             "Train a GPT-2 or Llama model as the INI recipe describes; any recipe\n"
                             "key can be overridden on the command line."},
                            4, "models, trainer loop, recipes, metrics"});
}

}  // namespace albion::launch
