// File: launch/command_train.cpp
// `albion train RECIPE.ini [--section.key=value ...] [--dry-run]`: load and validate the recipe,
// print it resolved, train, and finish with the validation loss and a text sample. SIGINT and
// SIGTERM stop training cleanly at the next step boundary (every rank at the same one).
//
// Under a launcher with more than one rank it trains data-parallel: MPI session, the same
// resolved recipe on every rank (checked), collectives bootstrap (mesh, devices, communicators,
// watchdog), then DDP or ZeRO-1 as parallel.zero says, across tensor-parallel groups when
// parallel.tensor > 1.
//
// With checkpoint.interval > 0 the run saves encrypted checkpoints and resumes from the newest one
// (launch/train_checkpoints.h), after the residency policy has allowed the checkpoint directory.
#include <atomic>
#include <csignal>
#include <iostream>

#include "collectives/bootstrap.h"
#include "launch/cli.h"
#include "launch/command_options.h"
#include "launch/fatal_handler.h"
#include "launch/job_layout.h"
#include "launch/memory_plan.h"
#include "launch/mpi_rank_group.h"
#include "launch/mpi_session.h"
#include "launch/rank_threads.h"
#include "launch/train_checkpoints.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/config/recipe.h"
#include "runtime/device.h"
#include "runtime/parallel/data_parallel.h"
#include "runtime/train/trainer.h"

namespace albion::launch {
namespace {

std::atomic<bool> g_stop_requested{false};

extern "C" void request_stop(int) { g_stop_requested.store(true); }

const char* const kUsage =
    "usage: albion train RECIPE.ini [--section.key=value ...] [--dry-run]\n\n"
    "Train a GPT-2 or Llama model as the INI recipe describes (see recipes/). Any recipe key can\n"
    "be overridden on the command line, e.g. --train.steps=200 --optim.lr=6e-4. --dry-run loads\n"
    "and validates the recipe, prints it resolved with the memory a rank will hold for its model\n"
    "(weights, gradients, AdamW state, kept activations), and exits. Ctrl-C stops at the next step.\n\n";

int report(const train::TrainSummary& summary, const train::WorldPosition& world) {
  if (world.rank == 0) {
    if (summary.final_val_loss) std::cout << "final val_loss " << *summary.final_val_loss << "\n";
    if (!summary.final_sample.empty()) std::cout << "sample:\n" << summary.final_sample << "\n";
  }
  return summary.stopped_early ? 130 : 0;
}

int train_distributed(config::Recipe recipe, const train::WorldPosition& world, const ProcessEnvironment& env) {
  MpiSession session;
  // Declared outside the try: on an error, report_fatal aborts every rank before these
  // destructors could wait in a collective for a peer that is gone.
  std::optional<collectives::ProcessGroups> groups;
  std::unique_ptr<train::Parallelism> parallel;
  std::optional<MpiRankGroup> checkpoint_group;
  std::unique_ptr<TrainCheckpoints> checkpoints;
  try {
    collectives::require_identical_on_all_ranks(session.world(), config::resolved_recipe_ini(recipe),
                                                "the resolved recipe");
    checkpoint_group.emplace(session.world());
    if (recipe.checkpoint.async && session.thread_level() < MPI_THREAD_MULTIPLE) {
      // A background save talks MPI while the trainer does: without thread support, save in line.
      log::warning("MPI lacks MPI_THREAD_MULTIPLE: checkpoints are written synchronously");
      recipe.checkpoint.async = false;
    }
    checkpoints = make_train_checkpoints(recipe, env, *checkpoint_group);
    collectives::BootstrapOptions options;
    options.backend = recipe.parallel.backend;
    options.use_cuda = runtime::choose_device(recipe.run.device, world.local_rank).is_cuda();
    options.cuda_devices = static_cast<int>(runtime::probe_compute().devices.size());
    options.tensor = static_cast<int>(recipe.parallel.tensor);
    options.pipeline = static_cast<int>(recipe.parallel.pipeline);
    options.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(recipe.parallel.timeout_s * 1000));
    groups = collectives::bootstrap(session.world(), options);
    share_cores_among_local_ranks(groups->world.local_size);
    log::info("training on ", groups->world.size, " ranks (", groups->world.node_count, " node(s)) over ",
              groups->backend, ": ", groups->mesh.data(), " data-parallel",
              recipe.parallel.zero > 0 ? str_cat(" (ZeRO-", recipe.parallel.zero, ")") : std::string(" (DDP)"),
              groups->mesh.tensor() > 1 ? str_cat(" x ", groups->mesh.tensor(), " tensor-parallel",
                                                  recipe.parallel.sequence ? " (sequence-parallel)" : "")
                                        : std::string());
    // Not a watched collective: preparing a corpus may take longer than a collective timeout.
    if (world.rank == 0) train::prepare_dataset_if_missing(recipe);
    MPI_Barrier(session.world());
    parallel = parallel::make_data_parallelism(groups->data, recipe.parallel, groups->tensor);
    train::Trainer trainer(recipe, world, parallel.get(), checkpoints ? checkpoints->hooks.get() : nullptr);
    return report(trainer.train(g_stop_requested), world);
  } catch (...) {
    return report_fatal(std::current_exception());
  }
}

}  // namespace

int run_train(const CommandArgs& args, const ProcessEnvironment& env) {
  const TrainArguments arguments = parse_train_arguments(args, "train");
  if (arguments.help) {
    std::cout << kUsage << config::recipe_help();
    return 0;
  }
  const std::string& recipe_path = arguments.recipe;
  ALBION_CHECK_AS(UsageError, !recipe_path.empty(), "train: missing RECIPE.ini; run 'albion train --help'");
  const config::Recipe recipe = config::load_recipe(recipe_path, arguments.overrides);
  if (env.world_rank == 0) {
    std::cout << "# resolved recipe (" << recipe_path << ")\n" << config::resolved_recipe_ini(recipe) << std::flush;
  }
  // Checked before anything starts, on one rank as on many, and by a dry run too.
  check_job_layout(recipe, env.world_size);
  if (arguments.dry_run) {
    const std::optional<RankMemory> memory = plan_rank_memory(recipe, env.world_size);
    if (memory && env.world_rank == 0) std::cout << "# per rank: " << describe(*memory) << "\n";
    return 0;
  }

  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  const train::WorldPosition world{env.world_rank, env.world_size, env.local_rank};
  if (env.world_size == 1) {
    checkpoint::SingleProcessGroup group;
    const std::unique_ptr<TrainCheckpoints> checkpoints = make_train_checkpoints(recipe, env, group);
    train::Trainer trainer(recipe, world, nullptr, checkpoints ? checkpoints->hooks.get() : nullptr);
    return report(trainer.train(g_stop_requested), world);
  }
  return train_distributed(recipe, world, env);
}

}  // namespace albion::launch
