// File: runtime/train/trainer.cpp
#include "runtime/train/trainer.h"

#include <ATen/core/grad_mode.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <sstream>

#include "checkpoint/keys/key_provider.h"
#include "kernels/common/autocast_scope.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/base/progress.h"
#include "runtime/data/chat_record.h"
#include "runtime/data/prepare.h"
#include "runtime/device.h"
#include "runtime/metrics/metrics_writer.h"
#include "runtime/models/attention_backend.h"
#include "runtime/models/model_config.h"
#include "runtime/models/hf_import.h"
#include "runtime/models/lora.h"
#include "runtime/models/sampler.h"
#include "runtime/train/device_peak.h"
#include "runtime/train/loss_score.h"
#include "runtime/train/step_profiler.h"

namespace albion::train {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

std::int64_t peak_memory_bytes(const at::Device& device) {
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[static_cast<std::size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::int64_t>(usage.ru_maxrss) * 1024;  // Linux reports KiB
}

std::string format_rate(double tokens_per_second) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  if (tokens_per_second >= 1e6) out << tokens_per_second / 1e6 << "M";
  else if (tokens_per_second >= 1e3) out << tokens_per_second / 1e3 << "k";
  else out << tokens_per_second;
  return out.str();
}

// A resumed model's vocabulary is the one it was trained with, its padding rows masked and as many
// as this run's tensor-parallel degree needs (Note [A checkpoint's vocabulary on another number of
// ranks]): GPT-2's 50,257, trained on one rank, resumes on two as 50,258 rows, not a new vocabulary.
void keep_resumed_vocabulary(const StoredVocabulary& resumed, const config::Recipe& recipe,
                             models::ModelConfig& model) {
  if (resumed.rows == model.vocab_size && resumed.padding == model.vocab_padding) return;
  ALBION_CHECK_AS(UsageError, recipe.model.vocab_size == 0 || recipe.model.vocab_size == resumed.rows,
                  "recipe key 'model.vocab_size' = ", recipe.model.vocab_size,
                  ", but the checkpoint to resume holds a model with ", resumed.rows,
                  " vocabulary rows; leave the key out to resume it, or choose another checkpoint.dir");
  model.vocab_size = resumed.rows;
  model.vocab_padding = resumed.padding;
  if (recipe.model.vocab_size == 0) model.pad_vocabulary_for(recipe.parallel.tensor);
  log::info("resuming a model with a vocabulary of ", model.vocab_in_use(), " trained as ", resumed.rows,
            " rows: ", model.vocab_size, " here, cut ", recipe.parallel.tensor, " way(s)");
}

}  // namespace

void prepare_dataset_if_missing(const config::Recipe& recipe) {
  if (fs::exists(recipe.data.dataset)) return;
  ALBION_CHECK_AS(UsageError, !recipe.data.inputs.empty(), "recipe key 'data.dataset': ",
                  recipe.data.dataset, " does not exist (prepare it with `albion data prepare`, or "
                  "set data.inputs to prepare it automatically)");
  // Automatic preparation writes plaintext, outside any residency policy: private data is prepared
  // by `albion data prepare --encrypt --policy`, which checks the storage and audits the write.
  ALBION_CHECK_AS(UsageError, recipe.data.key.empty(), "recipe key 'data.key' is set, but data.dataset ",
                  recipe.data.dataset, " does not exist: prepare it encrypted first with `albion data prepare "
                  "--encrypt KEY --policy POLICY` (automatic preparation would write it in plaintext)");
  data::PrepareOptions options;
  options.inputs = split_commas(recipe.data.inputs);
  options.output = recipe.data.dataset;
  options.tokenizer_spec = recipe.data.tokenizer;
  options.format = data::parse_input_format(recipe.data.format);
  options.chat_template = recipe.data.chat_template;
  options.val_fraction = recipe.data.val_fraction;
  options.text_document_bytes = recipe.data.text_document_bytes;
  options.seed = recipe.run.seed;
  log::info("preparing ", recipe.data.dataset, " from ", recipe.data.inputs, " (", recipe.data.format,
            recipe.data.format == "chat" ? ", template " + recipe.data.chat_template : "", ", tokenizer ",
            recipe.data.tokenizer, ")");
  const data::PrepareSummary summary = data::prepare_dataset(options);
  log::info("prepared ", summary.train_tokens, " train and ", summary.val_tokens, " val tokens");
}

models::ModelConfig recipe_model_config(const config::Recipe& recipe) {
  models::ModelConfig model = models::model_preset(recipe.model.preset);
  if (recipe.model.context_length > 0) model.context_length = recipe.model.context_length;
  if (recipe.model.vocab_size > 0) model.vocab_size = recipe.model.vocab_size;
  // A vocabulary the recipe leaves to the preset or the tokenizer is padded so that the
  // tensor-parallel degree divides it (GPT-2's 50,257 as 50,258 on 2 ranks). Past a published
  // model's rows (model.init) the padding is masked; a new model's trains like the rest.
  if (recipe.model.vocab_size == 0 && recipe.parallel.tensor > 1) {
    model.vocab_multiple = std::lcm(model.vocab_multiple, recipe.parallel.tensor);
    model.vocab_size = (model.vocab_size + model.vocab_multiple - 1) / model.vocab_multiple * model.vocab_multiple;
  }
  model.fused_kernels = recipe.model.fused_kernels;
  model.recompute_every = recipe.model.activation_checkpointing;
  model.sequence_parallel = recipe.parallel.sequence;
  return model;
}

bool runs_bf16_autocast(const config::Recipe& recipe, const at::Device& device) {
  return device.is_cuda() && recipe.precision.dtype != "fp32";
}

bool takes_muon(const config::Recipe& recipe, const models::CausalLm& model, const std::string& name,
                const at::Tensor& parameter) {
  return recipe.optim.name == "muon" && parameter.dim() == 2 && model.is_weight_decayed(name) &&
         name != "lm_head.weight";
}

models::LoraOptions recipe_lora_options(const config::Recipe& recipe) {
  models::LoraOptions options;
  options.rank = recipe.lora.rank;
  options.alpha = recipe.lora.alpha;
  options.dropout = recipe.lora.dropout;
  options.targets.clear();
  for (std::string target : split_commas(recipe.lora.targets)) {
    target.erase(0, target.find_first_not_of(" \t"));
    target.erase(target.find_last_not_of(" \t") + 1);
    if (!target.empty()) options.targets.push_back(target);
  }
  return options;
}

Trainer::Trainer(config::Recipe recipe, WorldPosition world, Parallelism* parallel, TrainingHooks* hooks)
    : recipe_(std::move(recipe)),
      world_(world),
      parallel_(parallel != nullptr ? parallel : &one_process_),
      hooks_(hooks != nullptr ? hooks : &default_hooks_),
      start_(std::chrono::steady_clock::now()) {
  recipe_.validate();
  device_ = runtime::choose_device(recipe_.run.device, world_.local_rank);
  const std::string& dtype = recipe_.precision.dtype;
  ALBION_CHECK_AS(UsageError, !(dtype == "bf16" && device_.is_cpu()),
                  "recipe key 'precision.dtype' is bf16, which Albion runs on GPUs only; use fp32 on CPU");
  bf16_autocast_ = runs_bf16_autocast(recipe_, device_);
  if (device_.is_cuda()) at::globalContext().setAllowTF32CuBLAS(recipe_.precision.allow_tf32);

  // The dataset's manifest first: the model's vocabulary comes from its tokenizer, and every
  // recipe error is reported before loading data.
  if (world_.world_size == 1) prepare_dataset_if_missing(recipe_);
  ALBION_CHECK_AS(UsageError, fs::exists(recipe_.data.dataset), "recipe key 'data.dataset': ",
                  recipe_.data.dataset, " does not exist; prepare it before starting ", world_.world_size,
                  " ranks");
  std::unique_ptr<checkpoint::KeyProvider> key;
  if (!recipe_.data.key.empty()) key = checkpoint::open_key_provider(recipe_.data.key);
  const data::DatasetManifest manifest = data::read_manifest(recipe_.data.dataset, key.get());

  // Model.
  models::ModelConfig model_config = recipe_model_config(recipe_);
  model_config.take_tokenizer_vocabulary(manifest.vocab_size);
  if (!recipe_.model.init.empty()) {
    // More rows than the published model has are masked padding (Note [Masked vocabulary padding]).
    std::int64_t published = 0;
    try {
      published = models::hugging_face_vocab_size(model_config, recipe_.model.init);
    } catch (const UsageError& error) {
      throw UsageError(str_cat("recipe key 'model.init': ", error.what()));
    }
    if (published > 0 && published < model_config.vocab_size) {
      model_config.vocab_padding = model_config.vocab_size - published;
    }
  }
  if (const std::optional<StoredVocabulary> resumed = hooks_->resumed_vocabulary()) {
    keep_resumed_vocabulary(*resumed, recipe_, model_config);
  }
  ALBION_CHECK_AS(UsageError, static_cast<std::uint64_t>(model_config.vocab_in_use()) >= manifest.vocab_size,
                  model_config.vocab_padding > 0    ? "recipe key 'model.init'"
                  : recipe_.model.vocab_size > 0 ? "recipe key 'model.vocab_size'"
                                                 : "recipe key 'model.preset'",
                  ": ", recipe_.model.preset, " has a vocabulary of ", model_config.vocab_in_use(),
                  ", smaller than the dataset's ", manifest.vocab_size);
  model_config.validate();
  ALBION_CHECK_AS(UsageError, recipe_.train.seq_len <= model_config.context_length,
                  "recipe key 'train.seq_len' = ", recipe_.train.seq_len,
                  " exceeds the model's context length ", model_config.context_length);
  const int data_ranks = parallel_->data_parallel_size();
  accumulation_ = recipe_.train.accumulation_steps(data_ranks);

  // Data.
  data::LoaderOptions loader;
  loader.directory = recipe_.data.dataset;
  loader.seq_len = recipe_.train.seq_len;
  loader.batch_size = recipe_.train.micro_batch;
  loader.rank = parallel_->data_parallel_rank();
  loader.world_size = data_ranks;
  loader.seed = recipe_.run.seed;
  loader.device = device_;
  loader.key_spec = recipe_.data.key;
  loader.pack_documents = recipe_.data.packs_documents();
  loader.document_positions = recipe_.data.document_masking;
  train_loader_ = std::make_unique<data::TokenLoader>(loader);
  if (const std::optional<data::DocumentPacking>& packing = train_loader_->packing()) {
    log::info("packing: ", packing->documents, " documents whole into ", packing->size(), " sequences of ",
              packing->capacity, " tokens, ", std::round(packing->padding_percent() * 10) / 10, "% padding; ",
              packing->documents_cut, " longer than a sequence cut into pieces");
  }
  loader.split = "val";
  loader.shuffle = false;
  try {
    val_loader_ = std::make_unique<data::TokenLoader>(loader);
  } catch (const UsageError& e) {
    log::warning("no validation: ", e.what());
  }
  try {
    tokenizer_ = tokenizers::load_tokenizer(manifest.tokenizer_spec);
    if (tokenizer_->content_hash() != manifest.tokenizer_hash) {
      log::warning("tokenizer ", manifest.tokenizer_spec, " changed since the dataset was prepared; no text samples");
      tokenizer_.reset();
    } else {
      tokenizer_spec_ = manifest.tokenizer_spec;
      tokenizer_hash_ = manifest.tokenizer_hash;
      chat_template_ = manifest.chat_template;
    }
  } catch (const UsageError& e) {
    log::warning("no text samples: ", e.what());
  }
  if (!recipe_.eval.choices.empty()) {
    // Read here, so an evaluation after hours of training cannot fail on it.
    ALBION_CHECK_AS(UsageError, tokenizer_ != nullptr, "recipe key 'eval.choices' needs the dataset's tokenizer, ",
                    manifest.tokenizer_spec, ", which cannot be used (see the warning above)");
    try {
      choice_questions_ = data::read_choice_questions(recipe_.eval.choices);
    } catch (const UsageError& error) {
      throw UsageError(str_cat("recipe key 'eval.choices': ", error.what()));
    }
    const auto limit = static_cast<std::size_t>(recipe_.eval.choices_limit);
    if (limit > 0 && limit < choice_questions_.size()) choice_questions_.resize(limit);
  }
  if (tokenizer_ && !chat_template_.empty()) {
    // Checked here, so a sample after hours of training cannot fail on it.
    try {
      sample_chat_template_ = data::parse_record_template(chat_template_);
      data::require_template_tokens(*tokenizer_, sample_chat_template_);
    } catch (const UsageError& e) {
      log::warning("text samples without the dataset's chat template: ", e.what());
      sample_chat_template_.reset();
    }
  }

  at::manual_seed(recipe_.run.seed);
  // Under tensor parallelism each rank builds and loads only its part of the layers.
  const std::shared_ptr<collectives::Communicator> tensor_group = parallel_->tensor_parallel_group();
  // model.init sets every parameter (hf_import refuses a directory that lacks one): nothing to draw.
  const models::InitialValues values =
      recipe_.model.init.empty() ? models::InitialValues::kRandom : models::InitialValues::kNone;
  model_ = models::make_model(model_config, at::kCPU, tensor_group, values);
  if (tensor_group) {
    log::info("tensor parallelism: attention heads, MLP features and vocabulary cut ", tensor_group->size(),
              " ways; this rank holds part ", tensor_group->rank());
  }
  std::string base_sha256;  // of model.init's files, for LoRA checkpoints: hashed as they are read
  if (!recipe_.model.init.empty()) {
    // A resumed run's checkpoint replaces these weights again, in hooks_->resume.
    try {
      models::load_hugging_face_weights(*model_, recipe_.model.init, recipe_.lora.rank > 0 ? &base_sha256 : nullptr);
    } catch (const UsageError& error) {
      throw UsageError(str_cat("recipe key 'model.init': ", error.what()));
    }
    log::info("initial weights from ", recipe_.model.init);
  }
  if (recipe_.lora.rank > 0) add_lora_adapters(std::move(base_sha256));
  model_->to(device_);
  std::vector<optim::OptimizedParameter> parameters;
  for (auto& [name, tensor] : model_->trainable_parameters()) {
    optim::OptimizedParameter p;
    p.name = name;
    p.parameter = tensor;
    p.decayed = model_->is_weight_decayed(name) ||
                (recipe_.optim.decay_embeddings && tensor.dim() >= 2);
    p.orthogonalized = takes_muon(recipe_, *model_, name, tensor);
    parameters.push_back(std::move(p));
  }
  optimizer_ = std::make_unique<optim::AdamW>(
      std::move(parameters),
      optim::AdamWOptions{recipe_.optim.beta1, recipe_.optim.beta2, recipe_.optim.eps, recipe_.optim.weight_decay,
                          recipe_.model.fused_kernels, optim::MuonOptions{recipe_.optim.muon_momentum}});
  schedule_ = {recipe_.optim.schedule, recipe_.optim.lr,          recipe_.optim.min_lr,
               recipe_.optim.warmup_steps, recipe_.train.steps, recipe_.optim.decay_fraction};
  flops_per_token_ = models::training_flops_per_token(model_config, recipe_.train.seq_len);
  if (recipe_.lora.rank > 0) {
    // Frozen weights get no weight gradient: 4 FLOPs per weight and token instead of 6; adapters 6.
    double adapters = 0;
    for (const auto& [name, tensor] : model_->trainable_parameters()) adapters += static_cast<double>(tensor.numel());
    flops_per_token_ += 6.0 * adapters - 2.0 * static_cast<double>(models::parameter_count(model_config, false));
  }
  if (device_.is_cuda()) {
    peak_flops_ = peak_bf16_flops(runtime::probe_compute().devices.at(device_.index()).name);
  }

  // Run directory: the resolved recipe and the metrics.
  if (world_.rank == 0) {
    fs::create_directories(recipe_.run.dir);
    std::ofstream(fs::path(recipe_.run.dir) / "recipe.ini") << config::resolved_recipe_ini(recipe_);
    metrics_ = std::make_unique<metrics::MetricsWriter>(recipe_.run.dir, recipe_.log.tensorboard);
  }
  profiler_ = std::make_unique<StepProfiler>(recipe_.profile, recipe_.run.dir, world_.rank, device_,
                                             recipe_.train.steps - 1);
  log::info("model ", recipe_.model.preset, ": ", models::parameter_count(model_config, true),
            " parameters, vocab ", model_config.vocab_size,
            model_config.vocab_padding > 0 ? str_cat(" (", model_config.vocab_padding, " padding row",
                                                     model_config.vocab_padding == 1 ? "" : "s", " masked)")
                                           : std::string(),
            ", on ", device_.str(),
            bf16_autocast_ ? " (bf16 autocast)" : " (fp32)", "; ", accumulation_,
            " micro-batch(es) of ", recipe_.train.micro_batch, "x", recipe_.train.seq_len,
            " per step and rank");
  if (const std::int64_t every = model_config.recompute_every; every > 0) {
    log::info("activation checkpointing: ",
              every == 1 ? std::string("every block's") : str_cat("one block in ", every, ":"),
              " activations recomputed in the backward pass");
  }
  const at::ScalarType attention_type = bf16_autocast_ ? at::kBFloat16 : at::kFloat;
  log::info("attention: torch SDPA, backend ",
            models::attention_backend(model_config, recipe_.train.seq_len, device_, attention_type));
  if (recipe_.data.document_masking) {
    log::info("document masking: attention within documents, positions from 0 in each; batches with a document "
              "starting inside a sequence run SDPA's ",
              models::attention_backend(model_config, recipe_.train.seq_len, device_, attention_type, true),
              " backend under a mask");
  }
}

Trainer::~Trainer() = default;

void Trainer::add_lora_adapters(std::string base_sha256) {
  const models::LoraOptions options = recipe_lora_options(recipe_);
  std::vector<std::string> adapted;
  try {
    adapted = models::add_lora_adapters(*model_, options);
  } catch (const UsageError& error) {
    throw UsageError(str_cat("recipe key 'lora.targets': ", error.what()));
  }
  // Checkpoints hold the adapters only, and name the base they adapt by this digest.
  lora_base_ = {fs::absolute(recipe_.model.init).lexically_normal().string(), std::move(base_sha256),
                model_->config().vocab_size};
  std::int64_t trainable = 0, total = 0;
  for (const auto& [name, tensor] : model_->named_parameters()) {
    total += tensor.numel();
    if (tensor.requires_grad()) trainable += tensor.numel();
  }
  log::info("LoRA rank ", options.rank, ", alpha ", options.alpha, " on ", adapted.size(), " layers (",
            recipe_.lora.targets, "): ", trainable, " of ", total, " parameters train (",
            100.0 * static_cast<double>(trainable) / static_cast<double>(total), "%)");
  if (bf16_autocast_) {
    const std::int64_t freed = models::hold_frozen_weights_in_bf16(*model_);
    log::info("LoRA: the frozen linear weights held in bf16, as bf16 autocast's products read them (",
              static_cast<double>(freed) / (1 << 20), " MiB less)");
  }
}

Trainer::QueuedStep Trainer::train_step(std::int64_t step) {
  const double lr = schedule_.at(step);
  // Note [Every trained target weighs alike]: the step's loss is the mean over the targets all its
  // micro-batches train on, on every data-parallel rank, however many each micro-batch holds (chat
  // data trains the answers only). So the step first counts them, in one all-reduce: a rank's
  // micro-batch loss (its own mean) is weighted by its count x ranks / all, and the gradients'
  // mean over the ranks is then the gradient of the mean over every target. Summed on the device:
  // no host synchronisation per micro-batch. The same reduction counts the inputs that are text,
  // not padding, for the rate of tokens logged.
  std::vector<data::TokenBatch> batches;
  std::vector<at::Tensor> trained;  // each micro-batch's count
  at::Tensor rank_targets = at::zeros({}, at::TensorOptions().dtype(at::kDouble).device(device_));
  std::int64_t rank_text_inputs = 0;
  for (std::int64_t micro = 0; micro < accumulation_; ++micro) {
    batches.push_back(train_loader_->next());
    trained.push_back(batches.back().trained_targets());
    rank_targets += trained.back();
    rank_text_inputs += batches.back().text_inputs();
  }
  const auto ranks = static_cast<double>(parallel_->data_parallel_size());
  const at::Tensor rank_counts =
      at::stack({rank_targets, at::full_like(rank_targets, static_cast<double>(rank_text_inputs))});
  const at::Tensor step_counts = parallel_->mean(rank_counts) * ranks;
  const at::Tensor step_targets = step_counts[0].clamp_min(1);
  const at::Tensor weight_per_target = ranks / step_targets;
  at::Tensor loss_sum = at::zeros_like(rank_targets);
  {
    // Ends before the optimizer changes the weights (Note [Weights cast once per step]).
    const kernels::WeightCastsKept weights_cast_once(bf16_autocast_);
    for (std::size_t micro = 0; micro < batches.size(); ++micro) {
      const data::TokenBatch& batch = batches[micro];
      at::Tensor loss;
      {
        const kernels::Bf16AutocastScope autocast(at::kCUDA, bf16_autocast_);
        loss = model_->loss(batch.inputs, batch.targets, batch.loss_mask, batch.positions);
      }
      parallel_->before_backward(micro + 1 == batches.size());
      (loss * (trained[micro] * weight_per_target).to(loss.scalar_type())).backward();
      loss_sum += loss.detach().to(at::kDouble) * trained[micro];
    }
  }
  const at::Tensor grad_norm = parallel_->step(*this, lr);
  const at::Tensor loss = parallel_->mean(loss_sum) * ranks / step_targets;
  return {step, lr, HostCopy(at::stack({loss, grad_norm.to(at::kDouble), step_counts[1]})),
          std::chrono::steady_clock::now()};
}

void Trainer::read_queued_steps_through(std::int64_t step) {
  while (!queued_.empty() && queued_.front().step <= step) {
    QueuedStep queued = std::move(queued_.front());
    queued_.pop_front();
    const std::vector<double> numbers = queued.numbers.read();  // waits for the step's work on the device
    const double loss = numbers[0];
    // A CUDA step's work ends about when its loss can be read (read one step late, the device has
    // been busy with it meanwhile); a CPU step's ran while it was queued, and the step after may
    // have run since: timed from its reads, the one before the last would count both and the last
    // neither.
    const auto done = device_.is_cuda() ? std::chrono::steady_clock::now() : queued.queued_at;
    last_done_ = std::max(last_done_, done);
    ALBION_CHECK_AS(SystemError, std::isfinite(loss), "training diverged: loss is ",
                    std::isnan(loss) ? "nan" : "infinite", " at step ", queued.step,
                    " (lower optim.lr or raise optim.warmup_steps; the last checkpoint is kept)");
    const double grad_norm = numbers[1];
    summary_.losses.push_back(loss);
    summary_.grad_norms.push_back(grad_norm);
    const std::int64_t text_tokens = std::llround(numbers[2]);
    summary_.text_tokens += text_tokens;
    tokens_since_log_ += text_tokens;
    ++steps_since_log_;
    log_step(queued.step, loss, queued.lr, grad_norm, done);
  }
}

std::chrono::steady_clock::duration Trainer::untimed_within(std::chrono::steady_clock::time_point from,
                                                            std::chrono::steady_clock::time_point to) {
  std::chrono::steady_clock::duration within{};
  for (const auto& [begin, end] : untimed_) {
    if (std::min(end, to) > std::max(begin, from)) within += std::min(end, to) - std::max(begin, from);
  }
  std::erase_if(untimed_, [to](const auto& span) { return span.second <= to; });
  return within;
}

void Trainer::log_step(std::int64_t step, double loss, double lr, double grad_norm,
                       std::chrono::steady_clock::time_point done) {
  const bool last = step + 1 == recipe_.train.steps;
  if ((step + 1) % recipe_.log.interval != 0 && !last && step != 0) return;
  const double interval = std::chrono::duration<double>(done - last_log_ - untimed_within(last_log_, done)).count();
  const double tokens_per_s = interval > 0 ? static_cast<double>(tokens_since_log_) / interval : 0;
  // ETA from the time per step over the last interval (at least one step read), steadier than one
  // step alone.
  const double seconds_per_step = steps_since_log_ > 0 ? interval / static_cast<double>(steps_since_log_) : 0;
  last_log_ = done;
  tokens_since_log_ = 0;
  steps_since_log_ = 0;
  const double elapsed = std::chrono::duration<double>(done - start_).count();
  std::optional<double> mfu;
  if (peak_flops_) mfu = flops_per_token_ * tokens_per_s / world_.world_size / *peak_flops_;
  if (metrics_) {
    metrics_->write(step, {{"loss", loss},
                           {"lr", lr},
                           {"grad_norm", grad_norm},
                           {"tokens_per_s", tokens_per_s},
                           {"mfu", mfu},
                           {"elapsed_s", elapsed},
                           {"peak_memory_bytes", static_cast<double>(peak_memory_bytes(device_))}});
  }
  const double remaining = seconds_per_step * static_cast<double>(recipe_.train.steps - step - 1);
  std::ostringstream line;
  line << "step " << step + 1 << "/" << recipe_.train.steps << "  loss " << std::fixed
       << std::setprecision(4) << loss << "  lr " << std::scientific << std::setprecision(2) << lr
       << "  grad " << std::fixed << std::setprecision(2) << grad_norm << "  "
       << format_rate(tokens_per_s) << " tok/s";
  if (mfu) line << "  mfu " << std::setprecision(1) << 100 * *mfu << "%";
  line << "  ETA " << ProgressBar::format_duration(remaining);
  log::info(line.str());
}

std::optional<double> Trainer::evaluate() {
  if (!val_loader_) return std::nullopt;
  at::NoGradGuard no_grad;
  const models::EvalModeScope eval_mode(*model_);
  // In the training's precision, as `albion eval` scores a checkpoint (launch/command_eval.cpp).
  const kernels::Bf16AutocastScope autocast(at::kCUDA, bf16_autocast_);
  val_loader_->restore({});
  // eval.batches micro-batches of B windows in all, shared by the data-parallel ranks. The loader
  // deals each step's windows round the R ranks (rank r's row k at step i is the stream's window
  // i x R x B + k x R + r), and each rank scores only its rows among the first eval.batches x B
  // windows, so any R scores the windows one rank does. Ranks may score different counts: the
  // forward passes are collective only within a tensor-parallel group, whose ranks share a data rank.
  const std::int64_t ranks = parallel_->data_parallel_size();
  const std::int64_t rank = parallel_->data_parallel_rank();
  const std::int64_t rows = recipe_.train.micro_batch;
  const std::int64_t windows = recipe_.eval.batches * rows;
  const std::int64_t steps = std::min<std::int64_t>((recipe_.eval.batches + ranks - 1) / ranks,
                                                    static_cast<std::int64_t>(val_loader_->steps_per_epoch()));
  LossScore score(device_);
  for (std::int64_t i = 0; i < steps; ++i) {
    const std::int64_t ahead = windows - i * ranks * rows - rank;  // from this rank's first row on
    const std::int64_t scored_rows = std::clamp<std::int64_t>((ahead + ranks - 1) / ranks, 0, rows);
    if (scored_rows == 0) break;
    score.add(*model_, val_loader_->next().first_rows(scored_rows));
  }
  return score.mean_over_data_ranks(*parallel_);
}

std::optional<ChoiceTally> Trainer::answer_choices() {
  if (choice_questions_.empty()) return std::nullopt;
  at::NoGradGuard no_grad;
  const models::EvalModeScope eval_mode(*model_);
  const kernels::Bf16AutocastScope autocast(at::kCUDA, bf16_autocast_);
  // Each data-parallel rank answers a run of consecutive questions, the ranks of a tensor-parallel
  // group (one data rank) the same ones, so their forward passes line up.
  const auto all = static_cast<std::int64_t>(choice_questions_.size());
  const std::int64_t ranks = parallel_->data_parallel_size();
  const std::int64_t rank = parallel_->data_parallel_rank();
  ChoiceTally tally;
  try {
    tally = answer_questions(*model_, *tokenizer_, choice_questions_, all * rank / ranks, all * (rank + 1) / ranks,
                             device_);
  } catch (const UsageError& error) {
    throw UsageError(str_cat("recipe key 'eval.choices': ", error.what()));
  }
  return ChoiceTally::from_counts(parallel_->mean(tally.counts(device_)) * static_cast<double>(ranks));
}

std::string Trainer::sample(const std::atomic<bool>& stop_requested) {
  if (!tokenizer_ || recipe_.eval.sample_tokens == 0) return "";
  std::vector<tokenizers::TokenId> prompt;
  std::vector<std::int64_t> stop_ids;
  if (tokenizer_->end_of_text()) stop_ids.push_back(*tokenizer_->end_of_text());
  if (sample_chat_template_) {
    const tokenizers::ChatMessage user_turn[] = {{"user", recipe_.eval.sample_prompt}};
    tokenizers::GenerationPrompt chat =
        tokenizers::render_generation_prompt(*tokenizer_, *sample_chat_template_, user_turn);
    prompt = std::move(chat.ids);
    stop_ids.push_back(chat.end_of_turn);
  } else {
    prompt = tokenizer_->encode(recipe_.eval.sample_prompt);
  }
  std::vector<std::int64_t> ids(prompt.begin(), prompt.end());
  models::SamplingOptions options;
  options.max_new_tokens = recipe_.eval.sample_tokens;
  options.top_k = recipe_.eval.top_k;
  options.top_p = recipe_.eval.top_p;
  options.decoding = recipe_.eval.top_k == 0 ? models::Decoding::kGreedy : models::Decoding::kSample;
  options.temperature = recipe_.eval.temperature;
  options.seed = recipe_.run.seed;
  bool ended = false;  // by one of stop_ids
  options.on_token = [&](std::int64_t id) { ended = std::ranges::find(stop_ids, id) != stop_ids.end(); };
  // Per rank, not agreed: the next step boundary agrees. A tensor-parallel model's forward is a
  // collective, so its ranks stop at the end of text only, where they all stop.
  const bool cut = parallel_->tensor_parallel_group() != nullptr;
  options.stop_requested = [&] { return ended || (!cut && stop_requested.load()); };
  // In the training's precision, as `albion generate` draws from a checkpoint (Note [Inference in
  // the training's precision], runtime/models/bf16_inference.h).
  const kernels::Bf16AutocastScope autocast(at::kCUDA, bf16_autocast_);
  const std::vector<std::int64_t> generated = models::sample(*model_, ids, options);
  if (!ended && static_cast<std::int64_t>(generated.size()) < options.max_new_tokens) {
    log::warning("text sample cut short after ", generated.size(), " tokens: stop requested");
  }
  std::vector<tokenizers::TokenId> out = sample_chat_template_ ? prompt : std::vector<tokenizers::TokenId>{};
  for (std::int64_t id : generated) {
    if (std::ranges::find(stop_ids, id) != stop_ids.end()) break;  // as `albion generate` shows it
    // Ids past the tokenizer's vocabulary (a model's padded rows) have no text.
    if (id >= 0 && static_cast<std::uint64_t>(id) < tokenizer_->vocab_size()) out.push_back(static_cast<tokenizers::TokenId>(id));
  }
  if (sample_chat_template_) return tokenizer_->decode(out);
  return recipe_.eval.sample_prompt + tokenizer_->decode(out);
}

TrainSummary Trainer::train(const std::atomic<bool>& stop_requested) {
  summary_ = {};
  queued_.clear();
  parallel_->attach(*this);
  const std::int64_t first = hooks_->resume(*this);
  if (first > 0 && metrics_) metrics_->mark_resumed(first);
  summary_.steps_done = first;
  last_log_ = last_done_ = std::chrono::steady_clock::now();
  untimed_.clear();
  for (std::int64_t step = first; step < recipe_.train.steps; ++step) {
    if (parallel_->any_rank(stop_requested.load())) {
      read_queued_steps();  // the step before, logged before the stop is
      log::warning("stopping at step ", step, " as requested");
      summary_.stopped_early = true;
      break;
    }
    profiler_->begin_step(step);  // outside the step's timing: starting and writing take time
    queued_.push_back(train_step(step));
    profiler_->end_step(step);
    summary_.steps_done = step + 1;

    const bool last = step + 1 == recipe_.train.steps;
    const bool evaluates = recipe_.eval.interval > 0 && ((step + 1) % recipe_.eval.interval == 0 || last);
    const bool samples = recipe_.eval.sample_interval > 0 && (step + 1) % recipe_.eval.sample_interval == 0 && !last;
    // Note [Steps read one late]: the step before, unless this step's end needs its own numbers.
    read_queued_steps_through(step == first || last || evaluates || samples ? step : step - 1);
    if (step == first) {
      summary_.seconds_to_first_step =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      log::debug("first step done ", summary_.seconds_to_first_step, " s after the trainer started");
      log::info("optimizer state: ", static_cast<double>(parallel_->optimizer_state_bytes(*this)) / (1 << 20),
                " MiB on rank ", world_.rank);
    }
    const auto extras_begin = std::chrono::steady_clock::now();
    if (evaluates) {
      metrics::Scalars evaluation;  // one record
      if (std::optional<double> val = evaluate()) {
        summary_.final_val_loss = val;
        evaluation.emplace_back("val_loss", *val);
        log::info("step ", step + 1, "  val_loss ", *val);
      }
      if (std::optional<ChoiceTally> answers = answer_choices()) {
        summary_.final_choices = answers;
        evaluation.emplace_back("choices_acc", answers->acc());
        evaluation.emplace_back("choices_acc_norm", answers->acc_norm());
        log::info("step ", step + 1, "  choices acc ", answers->acc(), "  acc_norm ", answers->acc_norm(), " (",
                  answers->questions, " questions)");
      }
      if (metrics_ && !evaluation.empty()) metrics_->write(step, evaluation);
    }
    if (samples) log::info("sample at step ", step + 1, ":\n", sample(stop_requested));
    hooks_->after_step(*this, step);
    // Note [Rates over training alone]: evaluation, samples and checkpoints after a step are not
    // training, and a rate over them would dip after each. Their time, from when the last step
    // read ended if they read one (waiting for a CUDA step's work is training), stays out of the
    // rate of the logged interval it falls in: on the CPU that of the step after, whose queued time
    // it precedes.
    untimed_.emplace_back(std::max(extras_begin, last_done_), std::chrono::steady_clock::now());
  }
  profiler_->stop();  // a run that ended inside the window still writes what it recorded
  hooks_->finish(*this, summary_.steps_done);
  // A stopped run (Ctrl-C, or a scheduler's SIGTERM before pre-emption) exits without sampling.
  if (!summary_.stopped_early) summary_.final_sample = sample(stop_requested);
  return std::move(summary_);
}

}  // namespace albion::train
