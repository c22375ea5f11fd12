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
//
// Under `albion launch -n N` the ranks form a data x tensor mesh (--tensor T): each model is cut
// over T ranks, each rank reading only its part of the weights, as a run too big for one device
// trains, and the N/T replicas score consecutive runs of the batches; the loss is one process's.
//
// CKPT may also be a Hugging Face model directory, to score the published model a fine-tune starts
// from on the same data: its config.json says what model it is, and its weights are public, so
// there is no key and no audit record.
//
// With --choices FILE instead of --dataset, the model answers multiple-choice questions (HellaSwag
// and the like; runtime/train/choice_score.h) and the accuracy is reported, the questions shared
// by the replicas in the same way.
#include <cmath>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/keys/key_provider.h"
#include "kernels/common/autocast_scope.h"
#include "launch/audited_checkpoint.h"
#include "launch/checkpoint_model.h"
#include "launch/cli.h"
#include "launch/command_options.h"
#include "launch/inference_job.h"
#include "launch/model_tokenizer.h"
#include "launch/published_model.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/base/progress.h"
#include "runtime/data/choice_questions.h"
#include "runtime/data/dataset_manifest.h"
#include "runtime/data/token_loader.h"
#include "runtime/device.h"
#include "runtime/models/hf_import.h"
#include "runtime/models/tensor_parallel.h"
#include "runtime/train/checkpointing.h"
#include "runtime/train/choice_score.h"
#include "runtime/train/loss_score.h"

namespace albion::launch {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage = "albion eval CKPT (--dataset DIR | --choices FILE.jsonl) [--key SPEC] [options]";
constexpr const char* kDescription =
    "Score the model in a checkpoint on a prepared token dataset: the mean next-token loss and the\n"
    "perplexity over every window of a split (the dataset's loss mask applies, so a chat dataset\n"
    "scores the answers only). CKPT is a step-N directory, or a checkpoint directory (its newest\n"
    "checkpoint is used). The dataset must use the model's tokenizer. Window length, batch size and\n"
    "packing default to the recipe's train.seq_len, train.micro_batch, data.packing and\n"
    "data.document_masking, so the windows are those it trained on. The weights are decrypted into\n"
    "memory only; the load is recorded in the run's audit log. Under 'albion launch -n N' the model\n"
    "is cut over --tensor T ranks (each reads only its part of the weights) and the N/T replicas\n"
    "share the batches. With --every, each committed checkpoint of the directory is scored in turn\n"
    "(each load audited) and the one with the lowest loss named: which step to keep, judged on a\n"
    "held-out set. Example: albion launch -n 8 -- eval runs/x/checkpoints --dataset D --tensor 8\n"
    "\n"
    "CKPT may also be a Hugging Face model directory (config.json and model.safetensors), to score the\n"
    "published model before fine-tuning it: windows of 256 tokens (at most its context) in batches of\n"
    "8 by default, from the split's stream. If the directory holds its tokenizer, the dataset must\n"
    "have been prepared with it. To score it on the windows a fine-tune trained on, pass that run's\n"
    "--packing and --document-masking.\n"
    "\n"
    "With --choices FILE.jsonl instead of --dataset, the model answers multiple-choice questions, one\n"
    "JSON object a line: {\"context\": ..., \"choices\": [...], \"answer\": N}, HellaSwag's own lines\n"
    "(ctx, endings, label) or MMLU's (question, choices, answer). Each choice is scored by its\n"
    "log-likelihood after the context (after one space), in the model's tokenizer: acc counts the\n"
    "questions whose answer is the most likely choice, acc_norm the same with each likelihood divided\n"
    "by its choice's length in characters (lm-evaluation-harness's acc_norm). Questions are batched,\n"
    "longest first, about 8,192 tokens a forward pass, and only the choices' positions are projected\n"
    "onto the vocabulary. With --every, the checkpoint with the highest acc_norm is named.";

struct EvalOptions {
  std::string checkpoint;
  std::string dataset;
  std::string choices;
  std::optional<std::int64_t> limit;
  std::string tokenizer;
  std::string split = "val";
  std::string key;
  std::string data_key;
  std::optional<std::int64_t> seq_len;
  std::optional<std::int64_t> micro_batch;
  std::optional<std::int64_t> batches;
  std::optional<std::string> packing;
  std::optional<bool> document_masking;
  bool every = false;
  std::string device = "auto";
  std::string audit;
  std::int64_t tensor = 1;
  bool json = false;
};

po::options_description eval_options(EvalOptions& o) {
  po::options_description options("options");
  options.add_options()
      ("checkpoint", po::value(&o.checkpoint)->value_name("CKPT"),
       "a step-N checkpoint, a checkpoint directory, or a Hugging Face model directory")
      ("dataset", po::value(&o.dataset)->value_name("DIR"), "a dataset prepared by 'albion data prepare'")
      ("choices", po::value(&o.choices)->value_name("FILE"),
       "multiple-choice questions (JSON Lines) to answer instead of a dataset to score")
      ("limit", po::value<std::int64_t>()->value_name("N")->notifier([&o](std::int64_t v) { o.limit = v; }),
       "with --choices: answer only the first N questions")
      ("tokenizer", po::value(&o.tokenizer)->value_name("SPEC"),
       "with --choices: the model's tokenizer, when the one the checkpoint records has moved (it must be the "
       "same tokenizer), or for a Hugging Face directory without one")
      ("split", po::value(&o.split)->value_name("SPLIT")->default_value("val"), "the split to score: val or train")
      ("key", po::value(&o.key)->value_name("SPEC"), "the checkpoint's key: file:PATH, env:VAR or pkcs11:URI")
      ("data-key", po::value(&o.data_key)->value_name("SPEC"), "the dataset's key, when it is encrypted")
      ("seq-len", po::value<std::int64_t>()->value_name("L")->notifier([&o](std::int64_t v) { o.seq_len = v; }),
       "tokens per window (default: train.seq_len; at most the model's context length)")
      ("micro-batch", po::value<std::int64_t>()->value_name("B")->notifier([&o](std::int64_t v) { o.micro_batch = v; }),
       "windows per forward pass (default: train.micro_batch)")
      ("batches", po::value<std::int64_t>()->value_name("N")->notifier([&o](std::int64_t v) { o.batches = v; }),
       "score only the first N batches (default: the whole split)")
      ("packing", po::value<std::string>()->value_name("MODE")->notifier([&o](const std::string& v) { o.packing = v; }),
       "stream (windows of the split's token stream) or documents (whole documents per window, padded); "
       "default: the checkpoint's data.packing, stream for a Hugging Face directory")
      ("document-masking", po::value<bool>()->value_name("BOOL")->notifier([&o](bool v) { o.document_masking = v; }),
       "attend within each document only (default: the checkpoint's data.document_masking, false for a Hugging "
       "Face directory)")
      ("every", po::bool_switch(&o.every),
       "score each committed checkpoint of the checkpoint directory CKPT, oldest first, and name the best")
      ("device", po::value(&o.device)->value_name("DEVICE"), "auto (CUDA when present), cpu or cuda")
      ("tensor", po::value(&o.tensor)->value_name("T"), "ranks each copy of the model is cut over (albion launch)")
      ("audit", po::value(&o.audit)->value_name("LOG"), "audit log (default: the run's, beside its checkpoints)")
      ("json", po::bool_switch(&o.json), "print the result as one JSON object on stdout");
  return options;
}

// The ranks an evaluation runs on: one process, or a job's ranks as a data x tensor mesh.
struct EvalRanks {
  checkpoint::RankGroup* job = nullptr;               // null: one process
  std::shared_ptr<collectives::Communicator> data;    // the replicas, which share the batches
  std::shared_ptr<collectives::Communicator> tensor;  // the ranks this rank's model is cut over
  int data_rank() const { return data ? data->rank() : 0; }
  int data_size() const { return data ? data->size() : 1; }
};

// What the options name, found (or refused) before any rank starts MPI.
struct EvalInputs {
  std::vector<fs::path> checkpoints;  // one, or with --every each of a directory's, oldest first
  bool published = false;             // the one is a Hugging Face model directory
  c10::Device device = at::kCPU;
  std::optional<data::DatasetManifest> manifest;  // --dataset's
  std::vector<data::ChoiceQuestion> questions;    // --choices', the first --limit of them
};

// The checkpoints CKPT names: a Hugging Face directory, or a checkpoint, or with --every each
// committed one of a checkpoint directory.
std::vector<fs::path> checkpoints_named(const EvalOptions& o, bool published) {
  if (!o.every) return {published ? fs::path(o.checkpoint) : resolve_checkpoint(o.checkpoint, "eval")};
  const std::string one_model =
      str_cat("eval: --every scores each checkpoint of a checkpoint directory, but ", o.checkpoint, " holds one model");
  ALBION_CHECK_AS(UsageError, !published, one_model);
  const fs::path directory = resolve_checkpoint(o.checkpoint, "eval").parent_path();  // refuses what holds none
  ALBION_CHECK_AS(UsageError, fs::equivalent(directory, o.checkpoint), one_model);
  std::vector<fs::path> checkpoints;
  for (const checkpoint::CommittedCheckpoint& committed : checkpoint::list_checkpoints(directory)) {
    checkpoints.push_back(committed.path);
  }
  return checkpoints;
}

std::vector<data::ChoiceQuestion> questions_named(const EvalOptions& o) {
  std::vector<data::ChoiceQuestion> questions = data::read_choice_questions(o.choices);
  if (o.limit && *o.limit < static_cast<std::int64_t>(questions.size())) questions.resize(*o.limit);
  return questions;
}

EvalInputs find_inputs(const EvalOptions& o, const ProcessEnvironment& env) {
  EvalInputs in;
  in.published = models::holds_hugging_face_model(o.checkpoint);
  in.checkpoints = checkpoints_named(o, in.published);
  in.device = runtime::choose_device(o.device, env.local_rank, "eval: --device");
  if (!o.choices.empty()) {
    in.questions = questions_named(o);
    return in;
  }
  std::unique_ptr<checkpoint::KeyProvider> data_key;
  if (!o.data_key.empty()) data_key = checkpoint::open_key_provider(o.data_key);
  in.manifest = data::read_manifest(o.dataset, data_key.get());
  return in;
}

// Checked before any weights are read, and on every rank alike: one error for the job. `vocabulary`:
// the dataset's or the tokenizer's.
void check_model_fits(const EvalOptions& o, std::uint64_t vocabulary, const models::ModelConfig& config,
                      std::int64_t default_seq_len) {
  ALBION_CHECK_AS(UsageError, static_cast<std::int64_t>(vocabulary) <= config.vocab_in_use(), "eval: ",
                  o.choices.empty() ? o.dataset : "the tokenizer", " has a vocabulary of ", vocabulary,
                  ", the model only ", config.vocab_in_use());
  const std::int64_t seq_len = o.seq_len.value_or(default_seq_len);
  ALBION_CHECK_AS(UsageError, seq_len <= config.context_length, "eval: windows of ", seq_len,
                  " tokens exceed the model's context length ", config.context_length, "; pass --seq-len");
  models::check_tensor_parallel_degree(config, o.tensor, "eval: --tensor");
}

// The dataset's tokenizer against those a Hugging Face directory holds: it must be one of them. A
// directory without one is assumed to match.
void check_published_tokenizer(const fs::path& directory, const EvalOptions& o, const data::DatasetManifest& manifest,
                               bool printing) {
  std::vector<std::string> specs;
  for (const PublishedTokenizer& held : published_tokenizers(directory, "eval", printing, &specs)) {
    if (held.tokenizer->content_hash() == manifest.tokenizer_hash) return;
  }
  ALBION_CHECK_AS(UsageError, specs.empty(), "eval: ", o.dataset, " was prepared with tokenizer ",
                  manifest.tokenizer_spec, ", not the model's (", specs.empty() ? "" : specs.front(), ")");
  if (printing) {
    log::warning("eval: ", directory.string(), " holds no tokenizer; the dataset's (", manifest.tokenizer_spec,
                 ") is assumed to be the model's");
  }
}

// The model to score, as loaded on this rank.
struct EvalModel {
  std::shared_ptr<models::CausalLm> model;
  config::Recipe recipe;  // a checkpoint's stored one; defaults for a Hugging Face directory
  bool bf16 = false;      // under bf16 autocast, as the trainer validates on this device
  std::int64_t step = -1;  // a checkpoint's; -1 for a Hugging Face directory
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;  // with --choices: the model's, to encode the questions
};

// A Hugging Face directory's model, each rank reading its part, with the default window length
// set in its recipe.
void open_published_model(const EvalOptions& o, const EvalInputs& in, const EvalRanks& ranks, EvalModel& loaded,
                          bool printing) {
  const fs::path& directory = in.checkpoints.front();
  const models::ModelConfig config = published_model_config(directory, o.tensor, "eval", printing);
  std::uint64_t vocabulary = 0;
  if (in.manifest) {
    check_published_tokenizer(directory, o, *in.manifest, printing);
    vocabulary = in.manifest->vocab_size;
  } else {
    loaded.tokenizer = open_published_tokenizer(directory, o.tokenizer, "eval", printing);
    vocabulary = loaded.tokenizer->vocab_size();
  }
  loaded.recipe.train.seq_len = std::min(loaded.recipe.train.seq_len, config.context_length);
  check_model_fits(o, vocabulary, config, loaded.recipe.train.seq_len);
  loaded.model = load_published_model(directory, config, in.device, ranks.tensor, loaded.bf16);
}

// The model at `path` (one of in.checkpoints): a checkpoint's load audited, on every rank.
EvalModel load_model(const EvalOptions& o, const ProcessEnvironment& env, const EvalInputs& in, const fs::path& path,
                     const EvalRanks& ranks) {
  EvalModel loaded;
  const bool printing = env.world_rank == 0;
  const std::string purpose = ranks.job ? str_cat("eval on ", ranks.job->size(), " ranks") : std::string("eval");
  auto load = [&](checkpoint::CheckpointReader& reader) {
    // The tokenizer is checked before the weights are decrypted.
    const train::RecordedTokenizer recorded = train::recorded_tokenizer(reader.manifest().state_json);
    std::uint64_t vocabulary = 0;
    if (!in.manifest) {
      loaded.tokenizer = open_recorded_tokenizer(recorded, o.tokenizer, "eval");
      vocabulary = loaded.tokenizer->vocab_size();
    } else if (recorded.hash.empty()) {
      if (printing) {
        log::warning("eval: the checkpoint does not record its tokenizer; the dataset's (",
                     in.manifest->tokenizer_spec, ") is assumed to be the model's");
      }
      vocabulary = in.manifest->vocab_size;
    } else {
      ALBION_CHECK_AS(UsageError, in.manifest->tokenizer_hash == recorded.hash, "eval: ", o.dataset,
                      " was prepared with tokenizer ", in.manifest->tokenizer_spec,
                      ", not the one the model was trained with (", recorded.spec, ")");
      vocabulary = in.manifest->vocab_size;
    }
    loaded.step = static_cast<std::int64_t>(reader.manifest().header.step);
    const CheckpointModel stored = describe_checkpoint_model(reader, o.tensor);
    check_model_fits(o, vocabulary, stored.config, stored.recipe.train.seq_len);  // before the weights are decrypted
    loaded.recipe = stored.recipe;
    loaded.bf16 = train::runs_bf16_autocast(loaded.recipe, in.device);
    LoadOptions options;
    options.bf16_inference = loaded.bf16;
    options.progress = printing;
    options.terminal = env.stderr_is_terminal;
    options.tensor_group = ranks.tensor;
    loaded.model = load_checkpoint_model(stored, weights_in(reader), in.device, path.string(), options);
  };
  if (in.published) {
    loaded.bf16 = train::runs_bf16_autocast(loaded.recipe, in.device);
    load_on_every_rank(ranks.job, [&] { open_published_model(o, in, ranks, loaded, printing); });
  } else {
    with_audited_checkpoint(path, o.key, o.audit, env, purpose, load, ranks.job);
  }
  return loaded;
}

// One model's score: the loss on a dataset (lower is better) or acc_norm on questions (higher is).
struct Scored {
  double value = 0;
  std::int64_t step = -1;
};

// Scores `loaded` (the model at `path`) on --dataset and prints the result on rank 0.
double score_dataset(const EvalOptions& o, const ProcessEnvironment& env, const EvalInputs& in, const fs::path& path,
                     const EvalRanks& ranks, const EvalModel& loaded) {
  const bool printing = env.world_rank == 0;
  data::LoaderOptions loader_options;
  loader_options.directory = o.dataset;
  loader_options.split = o.split;
  loader_options.seq_len = o.seq_len.value_or(loaded.recipe.train.seq_len);
  loader_options.batch_size = o.micro_batch.value_or(loaded.recipe.train.micro_batch);
  loader_options.shuffle = false;
  loader_options.device = in.device;
  loader_options.key_spec = o.data_key;
  // Scored as it trained, unless told otherwise (to score a published model as its fine-tune is).
  loader_options.pack_documents = o.packing ? *o.packing == "documents" : loaded.recipe.data.packs_documents();
  loader_options.document_positions = o.document_masking.value_or(loaded.recipe.data.document_masking);
  data::TokenLoader loader(loader_options);

  const auto full_batches = static_cast<std::int64_t>(loader.steps_per_epoch());
  const std::int64_t batches = std::min(o.batches.value_or(full_batches), full_batches);
  // The loader ends an epoch before a partial batch; those sequences are read as one batch of their own.
  const std::int64_t left_over =
      static_cast<std::int64_t>(loader.sequences_per_epoch()) - full_batches * loader_options.batch_size;
  const bool whole_split = batches == full_batches && left_over > 0;
  // Each replica scores a run of consecutive batches (the last one the left-over windows), so its
  // loader reads ahead as one process's does.
  const std::int64_t all_batches = batches + (whole_split ? 1 : 0);
  const std::int64_t first = all_batches * ranks.data_rank() / ranks.data_size();
  const std::int64_t end = all_batches * (ranks.data_rank() + 1) / ranks.data_size();

  train::LossScore score(in.device);
  {
    std::optional<ProgressBar> bar;  // rank 0's share stands for the job's
    if (printing) bar.emplace("eval", static_cast<double>(end - first), "batches", 1, env.stderr_is_terminal);
    loader.restore({0, static_cast<std::uint64_t>(std::min(first, batches) * loader_options.batch_size)});
    for (std::int64_t i = first; i < std::min(end, batches); ++i) {
      score.add(*loaded.model, loader.next());
      if (bar) bar->advance(1);
    }
    if (whole_split && end == all_batches) {
      data::LoaderOptions rest = loader_options;
      rest.batch_size = left_over;
      data::TokenLoader rest_loader(rest);
      rest_loader.restore({0, static_cast<std::uint64_t>(full_batches * loader_options.batch_size)});
      score.add(*loaded.model, rest_loader.next());
      if (bar) bar->advance(1);
    }
    if (bar) bar->finish();
  }
  const train::LossScore::Totals result = ranks.data ? score.totals_over(*ranks.data) : score.totals();
  if (!printing) return result.loss;
  const double perplexity = std::exp(result.loss);
  if (o.json) {
    nlohmann::json out = {{in.published ? "model" : "checkpoint", path.string()}, {"dataset", o.dataset},
                          {"split", o.split},                {"windows", result.windows},
                          {"seq_len", loader_options.seq_len}, {"scored_tokens", result.scored},
                          {"loss", result.loss},             {"perplexity", perplexity},
                          {"packing", loader_options.pack_documents ? "documents" : "stream"},
                          {"document_masking", loader_options.document_positions}};
    if (loaded.step >= 0) out["step"] = loaded.step;
    std::cout << out.dump() << "\n";
  } else {
    std::ostringstream line;
    if (o.every) line << "step " << loaded.step << " ";
    line << std::fixed << std::setprecision(4) << o.split << ": loss " << result.loss << ", perplexity "
         << std::setprecision(2) << perplexity << " over " << result.scored << " scored tokens (" << result.windows
         << " windows of " << loader_options.seq_len
         << (loader_options.pack_documents ? ", whole documents" : "")
         << (loader_options.document_positions ? ", attended within each" : "") << ")";
    std::cout << line.str() << "\n";
  }
  if (batches < full_batches) {
    log::info("eval: scored the first ", batches, " of the split's ", full_batches, " batches (--batches)");
  }
  return result.loss;
}

// Answers --choices' questions with `loaded` (the model at `path`) and prints the accuracy on rank 0.
double score_choices(const EvalOptions& o, const ProcessEnvironment& env, const EvalInputs& in, const fs::path& path,
                     const EvalRanks& ranks, const EvalModel& loaded) {
  const bool printing = env.world_rank == 0;
  // Each replica answers a run of consecutive questions.
  const auto all = static_cast<std::int64_t>(in.questions.size());
  const std::int64_t first = all * ranks.data_rank() / ranks.data_size();
  const std::int64_t end = all * (ranks.data_rank() + 1) / ranks.data_size();
  train::ChoiceTally tally;
  {
    std::optional<ProgressBar> bar;  // rank 0's share stands for the job's
    if (printing) bar.emplace("eval", static_cast<double>(end - first), "questions", 1, env.stderr_is_terminal);
    try {
      tally = train::answer_questions(*loaded.model, *loaded.tokenizer, in.questions, first, end, in.device,
                                           [&](std::int64_t, const std::vector<train::ChoiceLikelihood>&) {
                                             if (bar) bar->advance(1);
                                           });
    } catch (const UsageError& error) {
      throw UsageError(str_cat("eval: ", o.choices, ", ", error.what()));
    }
    if (bar) bar->finish();
  }
  if (ranks.data) tally = tally.over(*ranks.data, in.device);
  if (!printing) return tally.acc_norm();
  if (o.json) {
    nlohmann::json out = {{in.published ? "model" : "checkpoint", path.string()},
                          {"choices", o.choices},
                          {"questions", tally.questions},
                          {"acc", tally.acc()},
                          {"acc_norm", tally.acc_norm()}};
    if (loaded.step >= 0) out["step"] = loaded.step;
    std::cout << out.dump() << "\n";
  } else {
    std::ostringstream line;
    if (o.every) line << "step " << loaded.step << " ";
    line << std::fixed << std::setprecision(4) << "choices: acc " << tally.acc() << " (" << tally.correct << "/"
         << tally.questions << "), acc_norm " << tally.acc_norm() << " (" << tally.correct_norm << "/"
         << tally.questions << ")";
    std::cout << line.str() << "\n";
  }
  return tally.acc_norm();
}

// Scores the model at `path` (one of in.checkpoints) and prints the result on rank 0.
Scored evaluate(const EvalOptions& o, const ProcessEnvironment& env, const EvalInputs& in, const fs::path& path,
                const EvalRanks& ranks) {
  const EvalModel loaded = load_model(o, env, in, path, ranks);
  at::NoGradGuard no_grad;
  const models::EvalModeScope eval_mode(*loaded.model);
  // As the trainer validates (Note [Inference in the training's precision], runtime/models/bf16_inference.h).
  const kernels::Bf16AutocastScope autocast(in.device.type(), loaded.bf16);
  const double value = in.manifest ? score_dataset(o, env, in, path, ranks, loaded)
                                   : score_choices(o, env, in, path, ranks, loaded);
  return {value, loaded.step};
}

// Every checkpoint in.checkpoints names, in order; with --every, rank 0 then names the best.
int evaluate_each(const EvalOptions& o, const ProcessEnvironment& env, const EvalInputs& in, const EvalRanks& ranks) {
  const bool higher_is_better = !in.manifest;  // acc_norm, not a loss
  std::optional<Scored> best;
  for (const fs::path& path : in.checkpoints) {
    const Scored scored = evaluate(o, env, in, path, ranks);
    if (!best || (higher_is_better ? scored.value > best->value : scored.value < best->value)) best = scored;
  }
  if (o.every && env.world_rank == 0) {
    log::info("eval: the ", higher_is_better ? "highest acc_norm" : str_cat("lowest ", o.split, " loss"), ", ",
              best->value, ", is step ", best->step, "'s, of ", in.checkpoints.size(), " checkpoint(s)");
  }
  return 0;
}

// The options, checked before anything is opened; nullopt after printing --help.
std::optional<EvalOptions> parse_eval_command(const CommandArgs& args) {
  EvalOptions o;
  po::positional_options_description positional;
  positional.add("checkpoint", 1);
  const CommandSpec spec{"eval", kUsage, kDescription};
  if (!parse_command(args, spec, eval_options(o), positional)) return std::nullopt;
  ALBION_CHECK_AS(UsageError, !o.checkpoint.empty(), "eval: missing CKPT (usage: ", kUsage, ")");
  ALBION_CHECK_AS(UsageError, o.dataset.empty() != o.choices.empty(),
                  o.dataset.empty() ? "eval: missing --dataset DIR or --choices FILE (usage: "
                                    : "eval: --dataset and --choices cannot both be given (usage: ",
                  kUsage, ")");
  if (!o.choices.empty()) {
    const bool dataset_options = o.seq_len || o.micro_batch || o.batches || o.packing || o.document_masking ||
                                 !o.data_key.empty() || o.split != "val";
    ALBION_CHECK_AS(UsageError, !dataset_options,
                    "eval: --split, --seq-len, --micro-batch, --batches, --packing, --document-masking and "
                    "--data-key score a --dataset, not --choices");
  }
  ALBION_CHECK_AS(UsageError, !o.limit || !o.choices.empty(), "eval: --limit counts --choices' questions");
  ALBION_CHECK_AS(UsageError, o.tokenizer.empty() || !o.choices.empty(),
                  "eval: --tokenizer encodes --choices' questions; a --dataset is already tokenized");
  ALBION_CHECK_AS(UsageError, !o.limit || *o.limit > 0, "eval: --limit must be positive, got ", o.limit.value_or(0));
  ALBION_CHECK_AS(UsageError, o.split == "val" || o.split == "train", "eval: --split must be val or train, got '",
                  o.split, "'");
  ALBION_CHECK_AS(UsageError, !o.seq_len || *o.seq_len > 0, "eval: --seq-len must be positive, got ",
                  o.seq_len.value_or(0));
  ALBION_CHECK_AS(UsageError, !o.micro_batch || *o.micro_batch > 0, "eval: --micro-batch must be positive, got ",
                  o.micro_batch.value_or(0));
  ALBION_CHECK_AS(UsageError, !o.batches || *o.batches > 0, "eval: --batches must be positive, got ",
                  o.batches.value_or(0));
  ALBION_CHECK_AS(UsageError, !o.packing || *o.packing == "stream" || *o.packing == "documents",
                  "eval: --packing must be stream or documents, got '", o.packing.value_or(""), "'");
  return o;
}

void check_tensor_degree(const EvalOptions& o, int world_size) {
  ALBION_CHECK_AS(UsageError, o.tensor >= 1 && o.tensor <= world_size && world_size % o.tensor == 0, "eval: --tensor ",
                  o.tensor, " does not divide the job's ", world_size, " rank(s) (albion launch -n N starts them)");
}

}  // namespace

void check_eval_command(const CommandArgs& args, int world_size) {
  if (asks_for_help(args)) return;  // the ranks print it
  const EvalOptions o = *parse_eval_command(args);
  check_tensor_degree(o, world_size);
  checkpoints_named(o, models::holds_hugging_face_model(o.checkpoint));
  if (!o.choices.empty()) {
    questions_named(o);
  } else if (o.data_key.empty()) {
    data::read_manifest(o.dataset, nullptr);
  }
}

int run_eval(const CommandArgs& args, const ProcessEnvironment& env) {
  const std::optional<EvalOptions> parsed = parse_eval_command(args);
  if (!parsed) return 0;
  const EvalOptions& o = *parsed;
  check_tensor_degree(o, env.world_size);
  const EvalInputs inputs = find_inputs(o, env);
  if (env.world_size == 1) return evaluate_each(o, env, inputs, {});
  const auto tensor = static_cast<int>(o.tensor);
  auto on_rank = [&](checkpoint::RankGroup& job, const collectives::ProcessGroups& groups) {
    if (env.world_rank == 0) {
      log::info("eval on ", groups.world.size, " ranks over ", groups.backend, ": ", groups.mesh.data(),
                " replica(s) of the model, each cut over ", tensor, " rank(s)");
    }
    return evaluate_each(o, env, inputs, {&job, groups.data, tensor > 1 ? groups.tensor : nullptr});
  };
  return run_inference_job(inputs.device, tensor, on_rank);
}

}  // namespace albion::launch
