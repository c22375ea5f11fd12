// File: launch/command_eval.cpp
// `albion eval CKPT --dataset DIR [--split val] ...`: the loss and perplexity of a checkpoint's
// model on a prepared token dataset, such as a private held-out set, encrypted or not. The
// weights are decrypted into memory only and the load is audited, as for `generate`.
//
// Every window of the split is scored once, in stream order (or the first --batches batches), with
// the windows and loss mask the trainer's validation uses (the windows left over after the last
// full batch form one smaller batch): the loss is the mean next-token
// cross-entropy over the scored targets (a chat dataset scores the assistant's tokens only),
// weighted by token, so it does not depend on the batch size. The dataset must have been prepared
// with the tokenizer the model was trained with (the checkpoint records its hash).
#include <cmath>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "checkpoint/keys/key_provider.h"
#include "kernels/common/autocast_scope.h"
#include "launch/audited_checkpoint.h"
#include "launch/checkpoint_model.h"
#include "launch/cli.h"
#include "launch/command_options.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/base/progress.h"
#include "runtime/data/dataset_manifest.h"
#include "runtime/data/token_loader.h"
#include "runtime/device.h"
#include "runtime/train/checkpointing.h"
#include "runtime/train/loss_score.h"

namespace albion::launch {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage = "albion eval CKPT --dataset DIR [--split val] [--key SPEC] [options]";
constexpr const char* kDescription =
    "Score the model in a checkpoint on a prepared token dataset: the mean next-token loss and the\n"
    "perplexity over every window of a split (the dataset's loss mask applies, so a chat dataset\n"
    "scores the answers only). CKPT is a step-N directory, or a checkpoint directory (its newest\n"
    "checkpoint is used). The dataset must use the model's tokenizer. Window length and batch size\n"
    "default to the recipe's train.seq_len and train.micro_batch. The weights are decrypted into\n"
    "memory only; the load is recorded in the run's audit log.";

struct EvalOptions {
  std::string checkpoint;
  std::string dataset;
  std::string split = "val";
  std::string key;
  std::string data_key;
  std::optional<std::int64_t> seq_len;
  std::optional<std::int64_t> micro_batch;
  std::optional<std::int64_t> batches;
  std::string device = "auto";
  std::string audit;
  bool json = false;
};

po::options_description eval_options(EvalOptions& o) {
  po::options_description options("options");
  options.add_options()
      ("checkpoint", po::value(&o.checkpoint)->value_name("CKPT"), "a step-N checkpoint, or a checkpoint directory")
      ("dataset", po::value(&o.dataset)->value_name("DIR"), "a dataset prepared by 'albion data prepare'")
      ("split", po::value(&o.split)->value_name("SPLIT")->default_value("val"), "the split to score: val or train")
      ("key", po::value(&o.key)->value_name("SPEC"), "the checkpoint's key: file:PATH, env:VAR or pkcs11:URI")
      ("data-key", po::value(&o.data_key)->value_name("SPEC"), "the dataset's key, when it is encrypted")
      ("seq-len", po::value<std::int64_t>()->value_name("L")->notifier([&o](std::int64_t v) { o.seq_len = v; }),
       "tokens per window (default: train.seq_len; at most the model's context length)")
      ("micro-batch", po::value<std::int64_t>()->value_name("B")->notifier([&o](std::int64_t v) { o.micro_batch = v; }),
       "windows per forward pass (default: train.micro_batch)")
      ("batches", po::value<std::int64_t>()->value_name("N")->notifier([&o](std::int64_t v) { o.batches = v; }),
       "score only the first N batches (default: the whole split)")
      ("device", po::value(&o.device)->value_name("DEVICE"), "auto (CUDA when present), cpu or cuda")
      ("audit", po::value(&o.audit)->value_name("LOG"), "audit log (default: the run's, beside its checkpoints)")
      ("json", po::bool_switch(&o.json), "print the result as one JSON object on stdout");
  return options;
}

}  // namespace

int run_eval(const CommandArgs& args, const ProcessEnvironment& env) {
  EvalOptions o;
  po::positional_options_description positional;
  positional.add("checkpoint", 1);
  const CommandSpec spec{"eval", kUsage, kDescription};
  if (!parse_command(args, spec, eval_options(o), positional)) return 0;
  ALBION_CHECK_AS(UsageError, !o.checkpoint.empty(), "eval: missing CKPT (usage: ", kUsage, ")");
  ALBION_CHECK_AS(UsageError, !o.dataset.empty(), "eval: missing --dataset DIR (usage: ", kUsage, ")");
  ALBION_CHECK_AS(UsageError, o.split == "val" || o.split == "train", "eval: --split must be val or train, got '",
                  o.split, "'");
  ALBION_CHECK_AS(UsageError, !o.seq_len || *o.seq_len > 0, "eval: --seq-len must be positive, got ",
                  o.seq_len.value_or(0));
  ALBION_CHECK_AS(UsageError, !o.micro_batch || *o.micro_batch > 0, "eval: --micro-batch must be positive, got ",
                  o.micro_batch.value_or(0));
  ALBION_CHECK_AS(UsageError, !o.batches || *o.batches > 0, "eval: --batches must be positive, got ",
                  o.batches.value_or(0));
  const fs::path path = resolve_checkpoint(o.checkpoint, "eval");
  const c10::Device device = runtime::choose_device(o.device, env.local_rank, "eval: --device");
  std::unique_ptr<checkpoint::KeyProvider> data_key;
  if (!o.data_key.empty()) data_key = checkpoint::open_key_provider(o.data_key);
  const data::DatasetManifest manifest = data::read_manifest(o.dataset, data_key.get());

  std::shared_ptr<models::CausalLm> model;
  config::Recipe recipe;
  bool bf16 = false;  // under bf16 autocast, as the trainer validates on this device
  with_audited_checkpoint(path, o.key, o.audit, env, "eval", [&](checkpoint::CheckpointReader& reader) {
    // The dataset's tokenizer is checked before the weights are decrypted.
    const train::RecordedTokenizer recorded = train::recorded_tokenizer(reader.manifest().state_json);
    if (recorded.hash.empty()) {
      log::warning("eval: the checkpoint does not record its tokenizer; the dataset's (", manifest.tokenizer_spec,
                   ") is assumed to be the model's");
    } else {
      ALBION_CHECK_AS(UsageError, manifest.tokenizer_hash == recorded.hash, "eval: ", o.dataset,
                      " was prepared with tokenizer ", manifest.tokenizer_spec,
                      ", not the one the model was trained with (", recorded.spec, ")");
    }
    CheckpointModel stored = read_checkpoint_model(reader, env.stderr_is_terminal);
    recipe = stored.recipe;
    bf16 = train::runs_bf16_autocast(recipe, device);
    model = load_checkpoint_model(std::move(stored), device, path.string(), bf16);
  });
  ALBION_CHECK_AS(UsageError, static_cast<std::int64_t>(manifest.vocab_size) <= model->config().vocab_size, "eval: ",
                  o.dataset, " has a vocabulary of ", manifest.vocab_size, ", the model only ",
                  model->config().vocab_size);

  data::LoaderOptions loader_options;
  loader_options.directory = o.dataset;
  loader_options.split = o.split;
  loader_options.seq_len = o.seq_len.value_or(recipe.train.seq_len);
  loader_options.batch_size = o.micro_batch.value_or(recipe.train.micro_batch);
  loader_options.shuffle = false;
  loader_options.device = device;
  loader_options.key_spec = o.data_key;
  // Scored as it trained.
  loader_options.pack_documents = recipe.data.packs_documents();
  loader_options.document_positions = recipe.data.document_masking;
  ALBION_CHECK_AS(UsageError, loader_options.seq_len <= model->config().context_length, "eval: windows of ",
                  loader_options.seq_len, " tokens exceed the model's context length ", model->config().context_length,
                  "; pass --seq-len");
  data::TokenLoader loader(loader_options);

  const auto full_batches = static_cast<std::int64_t>(loader.steps_per_epoch());
  const std::int64_t batches = std::min(o.batches.value_or(full_batches), full_batches);
  // The loader ends an epoch before a partial batch; those sequences are read as one batch of their own.
  const std::int64_t left_over =
      static_cast<std::int64_t>(loader.sequences_per_epoch()) - full_batches * loader_options.batch_size;
  const bool whole_split = batches == full_batches && left_over > 0;

  at::NoGradGuard no_grad;
  const models::EvalModeScope eval_mode(*model);
  // As the trainer validates (Note [Inference in the training's precision], runtime/models/bf16_inference.h).
  const kernels::Bf16AutocastScope autocast(device.type(), bf16);
  train::LossScore score(device);
  {
    ProgressBar bar("eval", static_cast<double>(batches + (whole_split ? 1 : 0)), "batches", 1, env.stderr_is_terminal);
    for (std::int64_t i = 0; i < batches; ++i) {
      score.add(*model, loader.next());
      bar.advance(1);
    }
    if (whole_split) {
      data::LoaderOptions rest = loader_options;
      rest.batch_size = left_over;
      data::TokenLoader rest_loader(rest);
      rest_loader.restore({0, static_cast<std::uint64_t>(full_batches * loader_options.batch_size)});
      score.add(*model, rest_loader.next());
      bar.advance(1);
    }
    bar.finish();
  }
  const train::LossScore::Totals result = score.totals();
  const double perplexity = std::exp(result.loss);
  if (o.json) {
    const nlohmann::json out = {{"checkpoint", path.string()},     {"dataset", o.dataset},
                                {"split", o.split},                {"windows", result.windows},
                                {"seq_len", loader_options.seq_len}, {"scored_tokens", result.scored},
                                {"loss", result.loss},             {"perplexity", perplexity}};
    std::cout << out.dump() << "\n";
  } else {
    std::ostringstream line;
    line << std::fixed << std::setprecision(4) << o.split << ": loss " << result.loss << ", perplexity "
         << std::setprecision(2) << perplexity << " over " << result.scored << " scored tokens (" << result.windows
         << " windows of " << loader_options.seq_len << ")";
    std::cout << line.str() << "\n";
  }
  if (batches < full_batches) {
    log::info("eval: scored the first ", batches, " of the split's ", full_batches, " batches (--batches)");
  }
  return 0;
}

}  // namespace albion::launch
