// File: launch/command_train.cpp
// `albion train RECIPE.ini [--section.key=value ...] [--dry-run]`: load and validate the recipe,
// print it resolved, train, and finish with the validation loss and a text sample. SIGINT and
// SIGTERM stop training cleanly at the next step boundary.
#include <atomic>
#include <csignal>
#include <iostream>

#include "launch/cli.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/config/recipe.h"
#include "runtime/train/trainer.h"

namespace albion::launch {
namespace {

std::atomic<bool> g_stop_requested{false};

extern "C" void request_stop(int) { g_stop_requested.store(true); }

const char* const kUsage =
    "usage: albion train RECIPE.ini [--section.key=value ...] [--dry-run]\n\n"
    "Train a GPT-2 or Llama model as the INI recipe describes (see recipes/). Any recipe key can\n"
    "be overridden on the command line, e.g. --train.steps=200 --optim.lr=6e-4. --dry-run loads\n"
    "and validates the recipe, prints it resolved, and exits. Ctrl-C stops at the next step.\n\n";

}  // namespace

int run_train(const CommandArgs& args, const ProcessEnvironment& env) {
  std::string recipe_path;
  std::vector<std::string> overrides;
  bool dry_run = false;
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage << config::recipe_help();
      return 0;
    }
    if (arg == "--dry-run") {
      dry_run = true;
    } else if (arg.starts_with("--")) {
      overrides.push_back(arg);
    } else {
      ALBION_CHECK_AS(UsageError, recipe_path.empty(), "train: more than one recipe given ('",
                      recipe_path, "' and '", arg, "')");
      recipe_path = arg;
    }
  }
  ALBION_CHECK_AS(UsageError, !recipe_path.empty(), "train: missing RECIPE.ini; run 'albion train --help'");
  const config::Recipe recipe = config::load_recipe(recipe_path, overrides);
  ALBION_CHECK_AS(NotImplementedError, env.world_size == 1,
                  "training on ", env.world_size, " ranks is not implemented yet (issue #5: data parallelism)");
  if (env.world_rank == 0) {
    std::cout << "# resolved recipe (" << recipe_path << ")\n" << config::resolved_recipe_ini(recipe) << std::flush;
  }
  if (dry_run) return 0;

  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  train::Trainer trainer(recipe, {env.world_rank, env.world_size, env.local_rank});
  const train::TrainSummary summary = trainer.train(g_stop_requested);
  if (env.world_rank == 0) {
    if (summary.final_val_loss) std::cout << "final val_loss " << *summary.final_val_loss << "\n";
    if (!summary.final_sample.empty()) std::cout << "sample:\n" << summary.final_sample << "\n";
  }
  return summary.stopped_early ? 130 : 0;
}

}  // namespace albion::launch
