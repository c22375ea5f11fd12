// File: runtime/config/recipe.cpp
#include "runtime/config/recipe.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "runtime/base/check.h"
#include "runtime/base/redact.h"
#include "runtime/config/nearest_name.h"
#include "runtime/config/program_options.h"
#include "runtime/config/recipe_schema.h"

namespace albion::config {
namespace {

namespace po = boost::program_options;

void require(bool ok, const char* key, const std::string& problem) {
  if (!ok) throw UsageError(str_cat("recipe key '", key, "' ", problem));
}

template <typename T>
std::string got(const T& value) {
  return str_cat(", got ", value);
}

std::vector<std::string> key_names(const po::options_description& options) {
  std::vector<std::string> names;
  for (const auto& option : options.options()) names.push_back(option->long_name());
  return names;
}

}  // namespace

std::int64_t TrainConfig::accumulation_steps(int data_parallel_ranks) const {
  // Divided, not multiplied, as in validate(): the product of the three may overflow int64.
  const std::int64_t micro_batches = global_batch_tokens / (micro_batch * seq_len);
  if (global_batch_tokens % (micro_batch * seq_len) != 0 || micro_batches % data_parallel_ranks != 0) {
    throw UsageError(str_cat("recipe key 'train.global_batch_tokens' = ", global_batch_tokens,
                             " is not a multiple of train.micro_batch x train.seq_len x data-parallel ranks = ",
                             micro_batch, " x ", seq_len, " x ", data_parallel_ranks));
  }
  return micro_batches / data_parallel_ranks;
}

void Recipe::validate() const {
  const std::set<std::string> devices = {"auto", "cpu", "cuda"};
  require(devices.count(run.device) > 0, "run.device", "must be auto, cpu or cuda, got '" + run.device + "'");
  require(!run.dir.empty(), "run.dir", "must name a directory");
  // 2^20 tokens (eight times Llama 3.1's window); beyond, position tables alone exhaust memory.
  require(model.context_length >= 0 && model.context_length <= (1 << 20), "model.context_length",
          "must be in [0, 1048576]" + got(model.context_length));
  require(model.vocab_size >= 0 && model.vocab_size <= (1 << 24), "model.vocab_size",
          "must be in [0, 16777216]" + got(model.vocab_size));
  require(model.activation_checkpointing >= 0, "model.activation_checkpointing",
          "must be >= 0 (0: off, 1: every block, N: every Nth block)" + got(model.activation_checkpointing));
  // Adapters learn a correction to given weights; on a random model they would be most of a model
  // left untrained.
  require(lora.rank >= 0 && lora.rank <= 4096, "lora.rank", "must be in [0, 4096]" + got(lora.rank));
  require(lora.rank == 0 || !model.init.empty(), "lora.rank",
          "is set, but model.init names no weights to adapt (set model.init to a Hugging Face model directory)");
  require(std::isfinite(lora.alpha) && lora.alpha > 0, "lora.alpha", "must be positive and finite" + got(lora.alpha));
  require(lora.dropout >= 0 && lora.dropout < 1, "lora.dropout", "must be in [0, 1)" + got(lora.dropout));
  require(lora.rank == 0 || !lora.targets.empty(), "lora.targets", "must name at least one layer, or all-linear");
  require(!data.dataset.empty(), "data.dataset", "must name a prepared dataset directory");
  const std::set<std::string> formats = {"text", "jsonl", "chat"};
  require(formats.count(data.format) > 0, "data.format", "must be text, jsonl or chat, got '" + data.format + "'");
  const std::set<std::string> chat_templates = {"llama3", "llama3.1", "chatml", "qwen2.5", "none"};
  require(chat_templates.count(data.chat_template) > 0, "data.chat_template",
          "must be llama3, llama3.1, chatml, qwen2.5 or none, got '" + data.chat_template + "'");
  require(data.packing == "stream" || data.packing == "documents", "data.packing",
          "must be stream or documents, got '" + data.packing + "'");
  require(data.val_fraction >= 0 && data.val_fraction < 1, "data.val_fraction",
          "must be in [0, 1)" + got(data.val_fraction));
  require(train.seq_len > 0, "train.seq_len", "must be positive" + got(train.seq_len));
  require(train.micro_batch > 0, "train.micro_batch", "must be positive" + got(train.micro_batch));
  require(train.global_batch_tokens > 0, "train.global_batch_tokens",
          "must be positive" + got(train.global_batch_tokens));
  // Divided, not multiplied: micro_batch x seq_len could overflow int64 (and did, as a SIGFPE).
  require(train.micro_batch <= train.global_batch_tokens / train.seq_len, "train.global_batch_tokens",
          str_cat("must hold at least one micro-batch (train.micro_batch ", train.micro_batch, " x train.seq_len ",
                  train.seq_len, " tokens)", got(train.global_batch_tokens)));
  require(train.steps > 0, "train.steps", "must be positive" + got(train.steps));
  // inf passes a "> 0" check (nan does not); neither is a usable hyper-parameter.
  for (const auto& [name, value] : {std::pair<const char*, double>{"optim.lr", optim.lr},
                                    {"optim.min_lr", optim.min_lr}, {"optim.weight_decay", optim.weight_decay},
                                    {"optim.eps", optim.eps}, {"optim.grad_clip", optim.grad_clip},
                                    {"eval.temperature", eval.temperature}}) {
    require(std::isfinite(value), name, "must be finite" + got(value));
  }
  require(optim.lr > 0, "optim.lr", "must be positive" + got(optim.lr));
  require(optim.min_lr >= 0 && optim.min_lr <= optim.lr, "optim.min_lr",
          str_cat("must be in [0, optim.lr = ", optim.lr, "]", got(optim.min_lr)));
  require(optim.warmup_steps >= 0 && optim.warmup_steps <= train.steps, "optim.warmup_steps",
          str_cat("must be in [0, train.steps = ", train.steps, "]", got(optim.warmup_steps)));
  const std::set<std::string> schedules = {"cosine", "wsd", "constant"};
  require(schedules.count(optim.schedule) > 0, "optim.schedule",
          "must be cosine, wsd or constant, got '" + optim.schedule + "'");
  require(optim.decay_fraction > 0 && optim.decay_fraction <= 1, "optim.decay_fraction",
          "must be in (0, 1]" + got(optim.decay_fraction));
  require(optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0" + got(optim.weight_decay));
  require(optim.beta1 >= 0 && optim.beta1 < 1, "optim.beta1", "must be in [0, 1)" + got(optim.beta1));
  require(optim.beta2 >= 0 && optim.beta2 < 1, "optim.beta2", "must be in [0, 1)" + got(optim.beta2));
  require(optim.eps > 0, "optim.eps", "must be positive" + got(optim.eps));
  require(optim.grad_clip >= 0, "optim.grad_clip", "must be >= 0" + got(optim.grad_clip));
  require(optim.name == "adamw" || optim.name == "muon", "optim.name",
          "must be adamw or muon, got '" + optim.name + "'");
  require(optim.muon_momentum >= 0 && optim.muon_momentum < 1, "optim.muon_momentum",
          "must be in [0, 1)" + got(optim.muon_momentum));
  // Muon orthogonalizes whole weight matrices (ZeRO's pieces and tensor-parallel parts are put
  // together: Note [Muon on ZeRO's pieces], runtime/parallel/data_parallel.cpp); LoRA's adapters
  // are low-rank factors, not such matrices.
  require(optim.name != "muon" || lora.rank == 0, "optim.name",
          "= muon orthogonalizes each weight matrix whole, but lora.rank > 0 trains adapters; use adamw with it");
  require(eval.interval >= 0, "eval.interval", "must be >= 0" + got(eval.interval));
  require(eval.batches > 0, "eval.batches", "must be positive" + got(eval.batches));
  require(eval.sample_interval >= 0, "eval.sample_interval", "must be >= 0" + got(eval.sample_interval));
  // One sequence at a time, and past the window every token recomputes it: bounded, so a typo
  // cannot hold a run for hours after its last step.
  require(eval.sample_tokens >= 0 && eval.sample_tokens <= kMaxSampleTokens, "eval.sample_tokens",
          str_cat("must be in [0, ", kMaxSampleTokens, "]") + got(eval.sample_tokens));
  require(eval.top_k >= 0, "eval.top_k", "must be >= 0" + got(eval.top_k));
  require(eval.top_p > 0 && eval.top_p <= 1, "eval.top_p", "must be in (0, 1]" + got(eval.top_p));
  require(eval.choices_limit >= 0, "eval.choices_limit", "must be 0 (all) or positive" + got(eval.choices_limit));
  require(eval.temperature > 0, "eval.temperature", "must be positive" + got(eval.temperature));
  require(log.interval > 0, "log.interval", "must be positive" + got(log.interval));
  require(profile.steps >= 0, "profile.steps", "must be >= 0" + got(profile.steps));
  require(profile.start_step >= 1, "profile.start_step", "must be >= 1" + got(profile.start_step));
  const std::set<std::string> dtypes = {"auto", "fp32", "bf16"};
  require(dtypes.count(precision.dtype) > 0, "precision.dtype",
          "must be auto, fp32 or bf16, got '" + precision.dtype + "'");
  const std::set<std::string> backends = {"auto", "mpi", "nccl"};
  require(backends.count(parallel.backend) > 0, "parallel.backend",
          "must be auto, mpi or nccl, got '" + parallel.backend + "'");
  // Bounded so that the mesh arithmetic (int, tensor x pipeline) cannot overflow.
  require(parallel.tensor > 0 && parallel.tensor <= 1024, "parallel.tensor", "must be in [1, 1024]" + got(parallel.tensor));
  require(parallel.pipeline > 0 && parallel.pipeline <= 1024, "parallel.pipeline",
          "must be in [1, 1024]" + got(parallel.pipeline));
  require(parallel.zero >= 0 && parallel.zero <= 2, "parallel.zero", "must be 0, 1 or 2" + got(parallel.zero));
  // Each micro-batch's tokens are cut over the tensor-parallel ranks (modular: the product may overflow).
  require(!parallel.sequence || (train.micro_batch % parallel.tensor) * (train.seq_len % parallel.tensor) %
                                        parallel.tensor == 0,
          "parallel.sequence",
          str_cat("is on, and train.micro_batch x train.seq_len = ", train.micro_batch, " x ", train.seq_len,
                  " tokens do not divide over parallel.tensor = ", parallel.tensor,
                  " ranks (set parallel.sequence = false, or change them)"));
  require(parallel.bucket_mb > 0, "parallel.bucket_mb", "must be positive" + got(parallel.bucket_mb));
  require(parallel.timeout_s > 0, "parallel.timeout_s", "must be positive" + got(parallel.timeout_s));
  require(checkpoint.interval >= 0, "checkpoint.interval", "must be >= 0" + got(checkpoint.interval));
  require(checkpoint.keep >= 0, "checkpoint.keep", "must be >= 0" + got(checkpoint.keep));
  require(checkpoint.threads > 0 && checkpoint.threads <= 256, "checkpoint.threads",
          "must be in [1, 256]" + got(checkpoint.threads));
  if (checkpoint.interval > 0) {
    require(!checkpoint.dir.empty(), "checkpoint.dir", "must name a directory");
    require(!checkpoint.policy.empty(), "checkpoint.policy",
            "must name a residency policy file: checkpoints are written only to declared storage");
    require(checkpoint.plaintext || !checkpoint.key.empty(), "checkpoint.key",
            "must name a key (file:PATH, env:VAR or pkcs11:URI), or set checkpoint.plaintext = true");
    require(!(checkpoint.plaintext && !checkpoint.key.empty()), "checkpoint.plaintext",
            "is true but checkpoint.key is set: choose one");
  }
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code error;
  ALBION_CHECK_AS(UsageError, std::filesystem::exists(path, error), "recipe ", path, ": no such file");
  ALBION_CHECK_AS(UsageError, std::filesystem::is_regular_file(path, error), "recipe ", path,
                  ": not a regular file");
  std::ifstream file(path);
  ALBION_CHECK_AS(UsageError, file.good(), "recipe ", path, ": cannot be read");
  return parse_recipe(file, path, overrides);
}

Recipe parse_recipe(std::istream& file, const std::string& path, const std::vector<std::string>& overrides) {
  Recipe recipe;
  RecipeSchema schema(recipe);
  po::variables_map values;
  // Command-line overrides are stored first: Boost keeps the first value stored for a key.
  ParsedOptions cli = parse_options(overrides, schema.options(), {}, "albion train");
  values = std::move(cli.values);
  try {
    po::parsed_options given = po::parse_config_file(file, schema.options(), /*allow_unregistered=*/false);
    refuse_negative_unsigned(given, "");
    po::store(given, values);
    po::notify(values);
  } catch (const po::unknown_option& e) {
    std::string given = e.get_option_name();
    std::string hint;
    if (auto near = nearest_name(given, key_names(schema.options()))) {
      hint = str_cat(" (did you mean '", *near, "'?)");
    }
    throw UsageError(str_cat("recipe ", path, ": unknown key '", given, "'", hint));
  } catch (const po::error& e) {
    throw UsageError(str_cat("recipe ", path, ": ", program_options_message(e)));
  }
  recipe.validate();
  return recipe;
}

std::string resolved_recipe_ini(const Recipe& recipe) {
  Recipe copy = recipe;
  return without_pins(RecipeSchema(copy).to_ini());
}

std::string recipe_help() {
  Recipe defaults;
  std::ostringstream out;
  out << RecipeSchema(defaults).options();
  return out.str();
}

}  // namespace albion::config
