// File: launch/command_generate.cpp
// `albion generate CKPT [--key SPEC] [--prompt TEXT] [--tokens N] ...`: text from a trained or
// fine-tuned model, straight from its encrypted checkpoint. The weights are decrypted into memory
// only (nothing is written, so no residency policy is involved) and the load is audited like a
// resume. Tokens stream to stdout as they are drawn; Ctrl-C stops at the next token.
//
// Defaults come from the recipe stored in the checkpoint (eval.sample_prompt, sample_tokens,
// top_k, temperature and run.seed), so that without options the command draws exactly the sample
// the trainer printed at that step; the tokenizer is the one the checkpoint records. With --chat
// the prompt is a user turn of a chat template and only the answer is printed; with --interactive
// too the conversation goes on, a line of standard input per user turn.
//
// CKPT may also be a Hugging Face model directory (launch/published_model.h): the published model
// a fine-tune starts from, to set its text beside the fine-tune's, or what `ckpt export` wrote.
// Its tokenizer is the one the directory holds, and its end-of-text ids and sampling defaults those
// its authors set in generation_config.json (else those of a recipe that sets none).
//
// Under `albion launch -n N` the model is cut over the N ranks, each reading only its part of the
// weights: every rank draws the same tokens (the logits are gathered whole on each), rank 0 prints
// them, and Ctrl-C stops them all at the same token (rank 0's signal, broadcast per token).
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <iostream>
#include <optional>

#include "checkpoint/format/checkpoint_reader.h"
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
#include "runtime/config/recipe_schema.h"
#include "runtime/device.h"
#include "runtime/models/hf_import.h"
#include "runtime/models/sampler.h"
#include "runtime/models/tensor_parallel.h"
#include "runtime/tokenizers/chat_template.h"
#include "runtime/tokenizers/tokenizer.h"
#include "runtime/train/checkpointing.h"

namespace albion::launch {
namespace {

namespace fs = std::filesystem;

std::atomic<bool> g_stop_requested{false};
extern "C" void request_generate_stop(int) { g_stop_requested.store(true); }

constexpr const char* kUsage = "albion generate CKPT [--key SPEC] [--prompt TEXT] [--tokens N] [options]";
constexpr const char* kDescription =
    "Generate text with the model in a checkpoint: CKPT is a step-N directory, or a checkpoint\n"
    "directory (its newest checkpoint is used). The weights are decrypted into memory only. By\n"
    "default the prompt, length, top-k, top-p, temperature and seed are the recipe's eval.* and\n"
    "run.seed, so the output is the sample the trainer printed at that step. The text streams to\n"
    "stdout; Ctrl-C stops it. On a GPU, unless the recipe trained in fp32, the model runs under bf16\n"
    "autocast with its linear weights held in bf16, as the trainer samples. The load is recorded in\n"
    "the run's audit log. Under 'albion launch -n N' the model is cut over the N ranks (tensor\n"
    "parallelism, for a model too big for one device), each reading only its part of the weights.\n"
    "With --chat and --interactive, a conversation: each line of standard input is a user turn,\n"
    "answered with the conversation so far; the keys and values of the turns before are kept, so\n"
    "each turn computes only its new tokens. Example: albion generate CKPT --key K --chat llama3\n"
    "--interactive\n"
    "\n"
    "CKPT may also be a Hugging Face model directory (config.json and model.safetensors), such as the\n"
    "published model a fine-tune starts from: no key, no audit record, the tokenizer the directory\n"
    "holds (or --tokenizer), generation ending at its eos_token_id, and sampling as its\n"
    "generation_config.json sets it (do_sample, top_k, top_p, temperature, repetition_penalty, read\n"
    "as transformers reads them), else as a recipe that sets none (top-k 40, temperature 0.8, 200\n"
    "tokens after a newline).";

struct GenerateOptions {
  std::string checkpoint;
  std::string key;
  std::optional<std::string> prompt;
  std::optional<std::int64_t> tokens;
  std::optional<std::int64_t> top_k;
  std::optional<double> top_p;
  std::optional<double> repetition_penalty;
  std::optional<double> temperature;
  std::optional<std::uint64_t> seed;
  std::string tokenizer;
  std::string chat;
  bool interactive = false;
  std::string system;
  std::string device = "auto";
  std::string audit;
};

po::options_description generate_options(GenerateOptions& o) {
  po::options_description options("options");
  options.add_options()
      ("checkpoint", po::value(&o.checkpoint)->value_name("CKPT"),
       "a step-N checkpoint, a checkpoint directory, or a Hugging Face model directory")
      ("key", po::value(&o.key)->value_name("SPEC"), "the checkpoint's key: file:PATH, env:VAR or pkcs11:URI")
      ("prompt", po::value<std::string>()->value_name("TEXT")->notifier([&o](const std::string& v) { o.prompt = v; }),
       "text to continue (\\n for a newline; default: eval.sample_prompt)")
      ("tokens", po::value<std::int64_t>()->value_name("N")->notifier([&o](std::int64_t v) { o.tokens = v; }),
       "tokens to generate, at most 65536 (default: eval.sample_tokens)")
      ("top-k", po::value<std::int64_t>()->value_name("K")->notifier([&o](std::int64_t v) { o.top_k = v; }),
       "draw from the K most likely tokens; 0: greedy (default: eval.top_k)")
      ("top-p", po::value<double>()->value_name("P")->notifier([&o](double v) { o.top_p = v; }),
       "then from the fewest most likely tokens whose probabilities sum to P, in (0, 1]; 1: no cut (default: "
       "eval.top_p)")
      ("repetition-penalty", po::value<double>()->value_name("R")->notifier([&o](double v) {
         o.repetition_penalty = v;
       }),
       "divide the logit of each token already in the text by R where positive, multiply where negative; "
       "1: none (default: 1, or a Hugging Face directory's generation_config.json)")
      ("temperature", po::value<double>()->value_name("T")->notifier([&o](double v) { o.temperature = v; }),
       "sampling temperature, > 0 (default: eval.temperature)")
      ("seed", po::value<std::uint64_t>()->value_name("S")->notifier([&o](std::uint64_t v) { o.seed = v; }),
       "seed of the draws (default: run.seed)")
      ("chat", po::value(&o.chat)->value_name("TEMPLATE"),
       "for a chat model: --prompt becomes a user turn in this template (llama3, llama3.1, chatml or "
       "qwen2.5), and only "
       "the answer is printed, up to the template's end-of-turn token")
      ("system", po::value(&o.system)->value_name("TEXT"), "with --chat: a system message before the prompt")
      ("interactive", po::bool_switch(&o.interactive),
       "with --chat: a conversation; after the answer to --prompt, if given, each line of standard input is the "
       "next user turn, answered with the conversation so far, until the end of the input")
      ("tokenizer", po::value(&o.tokenizer)->value_name("SPEC"),
       "tokenizer spec, when the one the checkpoint records has moved (it must be the same tokenizer), or for "
       "a Hugging Face directory without one")
      ("device", po::value(&o.device)->value_name("DEVICE"), "auto (CUDA when present), cpu or cuda")
      ("audit", po::value(&o.audit)->value_name("LOG"), "audit log (default: the run's, beside its checkpoints)");
  return options;
}

// A model fine-tuned on chat data answers as trained only when prompted in the same format: says so
// when --chat is missing or differs from `trained`, the template it was trained in (none: "" or "none").
void warn_on_other_chat_format(const std::string& trained, const GenerateOptions& o) {
  if (trained.empty() || trained == o.chat || (trained == "none" && o.chat.empty())) return;
  if (trained == "none") {
    log::warning("generate: the model was fine-tuned on prompt/completion data without a chat template; --chat ",
                 o.chat, " prompts it in a format it was not trained on");
  } else if (o.chat.empty()) {
    log::warning("generate: the model was fine-tuned on chat data in the ", trained, " template; pass --chat ",
                 trained, " to prompt it that way");
  } else {
    log::warning("generate: --chat ", o.chat, ", but the model was fine-tuned on chat data in the ", trained,
                 " template");
  }
}

// Writes the text of `ids` past what is already printed, holding back an incomplete UTF-8
// character (decoded as U+FFFD) until the next token completes it. The whole sequence is decoded
// each time: some decoders (SentencePiece's leading space) do not decode a suffix on its own.
class TextStream {
 public:
  explicit TextStream(const tokenizers::Tokenizer& tokenizer) : tokenizer_(tokenizer) {}
  void update(const std::vector<tokenizers::TokenId>& ids, bool final) {
    const std::string text = tokenizer_.decode(ids);
    if (!final && text.ends_with("\xEF\xBF\xBD")) return;
    if (text.size() > shown_.size() && text.starts_with(shown_)) {
      std::cout << text.substr(shown_.size()) << std::flush;
      shown_ = text;
    }
  }

 private:
  const tokenizers::Tokenizer& tokenizer_;
  std::string shown_;  // printed so far
};

// The ids the model continues: the prompt as text, or with --chat a rendered conversation ending in
// the assistant's header. What is shown (the prompt, or with --chat the answer only) and the
// tokens that end the answer come with it.
struct Prompt {
  std::vector<tokenizers::TokenId> ids;
  std::vector<tokenizers::TokenId> shown;  // printed before the first drawn token
  std::vector<std::int64_t> stop_ids;      // end-of-text, and with --chat the end of the turn
};

// A conversation rendered for the model to answer: ending in the assistant's header, the answer
// ending at the template's end of turn (or `end_ids`, or the end of text).
Prompt build_chat_prompt(const tokenizers::Tokenizer& tokenizer, const std::string& chat_template,
                         const std::vector<tokenizers::ChatMessage>& messages,
                         const std::vector<std::int64_t>& end_ids) {
  tokenizers::GenerationPrompt chat =
      tokenizers::render_generation_prompt(tokenizer, tokenizers::parse_chat_template(chat_template), messages);
  Prompt prompt;
  prompt.ids = std::move(chat.ids);
  prompt.stop_ids = end_ids;
  if (tokenizer.end_of_text()) prompt.stop_ids.push_back(*tokenizer.end_of_text());
  prompt.stop_ids.push_back(chat.end_of_turn);
  return prompt;
}

// --system's message, where there is one: the conversation's opening.
std::vector<tokenizers::ChatMessage> opening(const GenerateOptions& o) {
  if (o.system.empty()) return {};
  return {{"system", config::unescape_recipe_string(o.system)}};
}

Prompt build_prompt(const tokenizers::Tokenizer& tokenizer, const GenerateOptions& o, const std::string& text,
                    const std::vector<std::int64_t>& end_ids) {
  if (!o.chat.empty()) {
    std::vector<tokenizers::ChatMessage> messages = opening(o);
    messages.push_back({"user", text});
    return build_chat_prompt(tokenizer, o.chat, messages, end_ids);
  }
  Prompt prompt;
  prompt.ids = tokenizer.encode(text);
  prompt.shown = prompt.ids;
  prompt.stop_ids = end_ids;
  if (tokenizer.end_of_text()) prompt.stop_ids.push_back(*tokenizer.end_of_text());
  ALBION_CHECK_AS(UsageError, !prompt.ids.empty(), "generate: the prompt is empty");
  return prompt;
}

// The ranks generation runs on: one process, or a job's ranks with the model cut over them all.
struct GenerateRanks {
  checkpoint::RankGroup* job = nullptr;  // null: one process
  std::shared_ptr<collectives::Communicator> tensor;
  bool printing() const { return job == nullptr || job->rank() == 0; }
};

// What generation needs from a checkpoint (loaded with the load audited, ok or failed) or a Hugging
// Face directory.
struct Loaded {
  std::shared_ptr<models::CausalLm> model;
  // As stored; a Hugging Face directory's: the defaults, with the sampling of its
  // generation_config.json where it has one.
  config::Recipe recipe;
  bool bf16 = false;      // runs under bf16 autocast, as the trainer samples on this device
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;
  std::vector<std::int64_t> end_ids;  // besides the tokenizer's end of text: a directory's eos_token_id
  std::string sampling_from;          // the file that set the recipe's sampling, if not the defaults
  double repetition_penalty = 1.0;    // not a recipe key: a directory's generation_config.json
};

// Checked before the weights are read.
void check_chat_template(const tokenizers::Tokenizer& tokenizer, const GenerateOptions& o) {
  if (!o.chat.empty()) tokenizers::render_generation_prompt(tokenizer, tokenizers::parse_chat_template(o.chat), {});
}

void check_vocabulary(const tokenizers::Tokenizer& tokenizer, const models::ModelConfig& config) {
  ALBION_CHECK_AS(UsageError, static_cast<std::int64_t>(tokenizer.vocab_size()) <= config.vocab_in_use(),
                  "generate: the tokenizer has ", tokenizer.vocab_size(), " tokens, the model only ",
                  config.vocab_in_use());
}

Loaded load_audited(const fs::path& path, const GenerateOptions& o, const c10::Device& device,
                    const ProcessEnvironment& env, const GenerateRanks& ranks) {
  Loaded loaded;
  const std::string purpose = ranks.job ? str_cat("generate on ", ranks.job->size(), " ranks") : "generate";
  auto load = [&](checkpoint::CheckpointReader& reader) {
    // The tokenizer first: a wrong --tokenizer, or one without --chat's special tokens, fails
    // before the weights are read.
    const train::RecordedTokenizer recorded = train::recorded_tokenizer(reader.manifest().state_json);
    loaded.tokenizer = open_recorded_tokenizer(recorded, o.tokenizer, "generate");
    if (ranks.printing()) warn_on_other_chat_format(recorded.chat_template, o);
    check_chat_template(*loaded.tokenizer, o);
    const CheckpointModel stored = describe_checkpoint_model(reader, ranks.tensor ? ranks.tensor->size() : 1);
    if (ranks.tensor) {
      models::check_tensor_parallel_degree(stored.config, ranks.tensor->size(), "generate: the job's rank count");
    }
    loaded.recipe = stored.recipe;
    loaded.bf16 = train::runs_bf16_autocast(loaded.recipe, device);
    check_vocabulary(*loaded.tokenizer, stored.config);
    LoadOptions options;
    options.bf16_inference = loaded.bf16;
    options.progress = ranks.printing();
    options.terminal = env.stderr_is_terminal;
    options.tensor_group = ranks.tensor;
    loaded.model = load_checkpoint_model(stored, weights_in(reader), device, path.string(), options);
  };
  with_audited_checkpoint(path, o.key, o.audit, env, purpose, load, ranks.job);
  return loaded;
}

// How a Hugging Face directory's authors generate with its model: the ids that end a text, and
// the sampling of its generation_config.json, if it has one, as the defaults in `loaded`.
void take_authors_generation(const fs::path& directory, const models::ModelConfig& config, Loaded& loaded,
                             bool printing) {
  const PublishedGeneration generation = published_generation(directory);
  loaded.end_ids = generation.end_ids;
  if (!generation.sampling) return;
  const PublishedSampling& authors = *generation.sampling;
  loaded.sampling_from = generation.sampling_file;
  // transformers' top_k 0 is no cut, Albion's greedy.
  loaded.recipe.eval.top_k = !authors.sample ? 0 : authors.top_k == 0 ? config.vocab_size : authors.top_k;
  loaded.recipe.eval.top_p = authors.top_p;
  loaded.recipe.eval.temperature = authors.temperature;
  loaded.repetition_penalty = authors.repetition_penalty;
  if (printing && !authors.not_applied.empty()) {
    std::string names;
    for (const std::string& name : authors.not_applied) names += (names.empty() ? "" : ", ") + name;
    log::warning("generate: ", loaded.sampling_from, " sets ", names,
                 ", which Albion's sampler does not apply: the text is drawn without");
  }
}

Loaded load_published(const fs::path& directory, const GenerateOptions& o, const c10::Device& device,
                      const GenerateRanks& ranks) {
  Loaded loaded;
  load_on_every_rank(ranks.job, [&] {
    loaded.tokenizer = open_published_tokenizer(directory, o.tokenizer, "generate", ranks.printing());
    if (const std::optional<std::string> chat = published_chat_template(directory); chat && ranks.printing()) {
      if (!chat->empty()) {
        warn_on_other_chat_format(*chat, o);  // Albion's export of a chat fine-tune
      } else if (o.chat.empty()) {
        log::warning("generate: ", directory.string(), " is a chat model (its tokenizer_config.json has a chat "
                     "template); pass --chat with the template it follows (llama3, llama3.1, chatml or qwen2.5)");
      }
    }
    check_chat_template(*loaded.tokenizer, o);
    const std::int64_t degree = ranks.tensor ? ranks.tensor->size() : 1;
    const models::ModelConfig config = published_model_config(directory, degree, "generate", ranks.printing());
    models::check_tensor_parallel_degree(config, degree, "generate: the job's rank count");
    check_vocabulary(*loaded.tokenizer, config);
    take_authors_generation(directory, config, loaded, ranks.printing());
    loaded.bf16 = train::runs_bf16_autocast(loaded.recipe, device);
    loaded.model = load_published_model(directory, config, device, ranks.tensor, loaded.bf16);
  });
  return loaded;
}

// The sampling the options ask for, over the defaults `loaded` brings (its recipe's; a Hugging Face
// directory's generation_config.json), said in a log line where the defaults came from that file.
models::SamplingOptions sampling_options(const GenerateOptions& o, const Loaded& loaded, bool printing) {
  const config::Recipe& recipe = loaded.recipe;
  models::SamplingOptions sampling;
  sampling.max_new_tokens = o.tokens.value_or(recipe.eval.sample_tokens);
  sampling.top_k = o.top_k.value_or(recipe.eval.top_k);
  sampling.top_p = o.top_p.value_or(recipe.eval.top_p);
  sampling.decoding = sampling.top_k == 0 ? models::Decoding::kGreedy : models::Decoding::kSample;
  sampling.temperature = o.temperature.value_or(recipe.eval.temperature);
  sampling.seed = o.seed.value_or(recipe.run.seed);
  sampling.repetition_penalty = o.repetition_penalty.value_or(loaded.repetition_penalty);
  if (printing && !loaded.sampling_from.empty()) {
    const bool greedy = sampling.decoding == models::Decoding::kGreedy;
    log::info("generate: ",
              greedy ? "greedy" : str_cat("top-k ", sampling.top_k, ", top-p ", sampling.top_p, ", temperature ",
                                          sampling.temperature),
              ", repetition penalty ", sampling.repetition_penalty, " (as ", loaded.sampling_from,
              " sets, where no option overrides it)");
  }
  return sampling;
}

// What one draw gave: the ids of its text (without the token that ended it), how many tokens were
// drawn, and whether Ctrl-C stopped it.
struct Drawn {
  std::vector<tokenizers::TokenId> text;
  std::int64_t tokens = 0;
  bool stopped = false;
};

// Draws after `prompt`, printing (on the printing rank) what it shows and then the text as it is
// drawn, and a newline. Ends at a stop id, after sampling.max_new_tokens, or at Ctrl-C: on many
// ranks, rank 0's, broadcast per token, so that every rank stops at the same one. With
// `conversation`, the KV cache of the turns before (models::ConversationCache).
Drawn draw(const Loaded& loaded, const Prompt& prompt, models::SamplingOptions sampling, at::Generator& generator,
           const GenerateRanks& ranks, const c10::Device& device, models::ConversationCache* conversation = nullptr) {
  const tokenizers::Tokenizer& tokenizer = *loaded.tokenizer;
  const bool printing = ranks.printing();
  Drawn drawn;
  std::vector<tokenizers::TokenId> shown = prompt.shown;
  TextStream stream(tokenizer);
  if (printing) stream.update(shown, false);
  bool ended = false;  // the model drew an end-of-text or end-of-turn token
  sampling.on_token = [&](std::int64_t id) {
    ++drawn.tokens;
    ended = std::find(prompt.stop_ids.begin(), prompt.stop_ids.end(), id) != prompt.stop_ids.end();
    // Ids past the tokenizer's vocabulary (a model's padded rows) have no text.
    if (ended || static_cast<std::uint64_t>(id) >= tokenizer.vocab_size()) return;
    shown.push_back(static_cast<tokenizers::TokenId>(id));
    drawn.text.push_back(static_cast<tokenizers::TokenId>(id));
    if (printing) stream.update(shown, false);
  };
  sampling.stop_requested = [&] {
    if (ended) return true;  // every rank drew the same token
    drawn.stopped = g_stop_requested.load();
    if (ranks.job) drawn.stopped = ranks.job->broadcast(drawn.stopped ? "1" : "") == "1";
    return drawn.stopped;
  };
  std::signal(SIGINT, request_generate_stop);
  std::signal(SIGTERM, request_generate_stop);
  {
    // As the trainer samples (Note [Inference in the training's precision], runtime/models/bf16_inference.h).
    const kernels::Bf16AutocastScope autocast(device.type(), loaded.bf16);
    models::sample(*loaded.model, std::vector<std::int64_t>(prompt.ids.begin(), prompt.ids.end()), sampling,
                   generator, conversation);
  }
  if (printing) {
    stream.update(shown, true);
    std::cout << "\n" << std::flush;
  }
  return drawn;
}

// The next user turn of --interactive: a line of standard input, read on rank 0 and broadcast to
// every rank (blank lines skipped); nullopt at the end of the input. Ctrl-C here ends the process.
std::optional<std::string> read_turn(const GenerateRanks& ranks, bool terminal) {
  std::signal(SIGINT, SIG_DFL);
  std::string turn;  // "+" and the line; "" at the end of the input
  if (ranks.printing()) {
    std::string line;
    while (turn.empty()) {
      if (terminal) std::cerr << "> " << std::flush;
      if (!std::getline(std::cin, line)) break;
      if (line.find_first_not_of(" \t\r") != std::string::npos) turn = "+" + line;
    }
  }
  if (ranks.job) turn = ranks.job->broadcast(turn);
  if (turn.empty()) return std::nullopt;
  return turn.substr(1);
}

// --interactive: a conversation in the --chat template. The user's turns are --prompt, if given,
// then each line of standard input; each is answered with the whole conversation so far in view,
// the draws continuing one generator; the KV cache is kept from turn to turn, so a turn computes
// only the tokens after what it shares with the last. Ends at the end of the input, or at Ctrl-C.
Drawn converse(const GenerateOptions& o, const Loaded& loaded, const models::SamplingOptions& sampling,
               at::Generator& generator, const GenerateRanks& ranks, const c10::Device& device, bool terminal) {
  std::vector<tokenizers::ChatMessage> messages = opening(o);
  std::optional<std::string> turn = o.prompt ? std::optional(config::unescape_recipe_string(*o.prompt))
                                             : read_turn(ranks, terminal);
  Drawn all;
  const std::int64_t context = loaded.model->config().context_length;
  models::ConversationCache kept(context);
  for (int number = 1; turn; ++number) {
    messages.push_back({"user", *turn});
    const Prompt prompt = build_chat_prompt(*loaded.tokenizer, o.chat, messages, loaded.end_ids);
    const auto in_view = static_cast<std::int64_t>(prompt.ids.size());
    if (ranks.printing()) {
      const std::vector<std::int64_t> ids(prompt.ids.begin(), prompt.ids.end());
      log::info("generate: turn ", number, ", ", in_view, " tokens in view (", models::reused_positions(kept, ids),
                " of them read already)",
                in_view + sampling.max_new_tokens > context
                    ? str_cat(" (with the answer, more than the model's context of ", context,
                              ": the oldest slide out of view)")
                    : "");
    }
    const Drawn answer = draw(loaded, prompt, sampling, generator, ranks, device, &kept);
    all.tokens += answer.tokens;
    if (answer.stopped) {
      all.stopped = true;
      break;
    }
    messages.push_back({"assistant", loaded.tokenizer->decode(answer.text)});
    turn = read_turn(ranks, terminal);
  }
  return all;
}

int generate(const GenerateOptions& o, const ProcessEnvironment& env, const fs::path& path, bool published,
             const c10::Device& device, const GenerateRanks& ranks) {
  const Loaded loaded = published ? load_published(path, o, device, ranks) : load_audited(path, o, device, env, ranks);
  const bool printing = ranks.printing();
  const models::SamplingOptions sampling = sampling_options(o, loaded, printing);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(sampling.seed);
  const auto start = std::chrono::steady_clock::now();
  Drawn drawn;
  if (o.interactive) {
    drawn = converse(o, loaded, sampling, generator, ranks, device, env.stderr_is_terminal);
  } else {
    // The stored recipe's prompt is unescaped already, when the recipe was parsed.
    const std::string prompt = o.prompt ? config::unescape_recipe_string(*o.prompt) : loaded.recipe.eval.sample_prompt;
    drawn = draw(loaded, build_prompt(*loaded.tokenizer, o, prompt, loaded.end_ids), sampling, generator, ranks,
                 device);
  }
  if (!printing) return drawn.stopped ? 130 : 0;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log::info("generated ", drawn.tokens, " token(s) in ", seconds, " s (", seconds > 0 ? drawn.tokens / seconds : 0.0,
            " tokens/s) on ", device.str(), loaded.bf16 ? " (bf16 autocast)" : "",
            ranks.job ? str_cat(", cut over ", ranks.job->size(), " ranks") : "", " from ", path.string());
  if (drawn.stopped) {
    log::warning("stopped after ", drawn.tokens, " token(s) as requested");
    return 130;
  }
  return 0;
}

// The options, checked before anything is decrypted; nullopt after printing --help.
std::optional<GenerateOptions> parse_generate_command(const CommandArgs& args) {
  GenerateOptions o;
  po::positional_options_description positional;
  positional.add("checkpoint", 1);
  const CommandSpec spec{"generate", kUsage, kDescription};
  if (!parse_command(args, spec, generate_options(o), positional)) return std::nullopt;
  ALBION_CHECK_AS(UsageError, !o.checkpoint.empty(), "generate: missing CKPT (usage: ", kUsage, ")");
  // What the user gave is checked before anything is decrypted; the stored recipe's values were
  // checked when it was parsed.
  ALBION_CHECK_AS(UsageError, !o.tokens || (*o.tokens >= 0 && *o.tokens <= config::kMaxSampleTokens),
                  "generate: --tokens must be in [0, ", config::kMaxSampleTokens, "], got ", o.tokens.value_or(0));
  ALBION_CHECK_AS(UsageError, !o.top_k || *o.top_k >= 0, "generate: --top-k must be >= 0, got ", o.top_k.value_or(0));
  ALBION_CHECK_AS(UsageError, !o.top_p || (*o.top_p > 0 && *o.top_p <= 1), "generate: --top-p must be in (0, 1], got ",
                  o.top_p.value_or(0));
  const double penalty = o.repetition_penalty.value_or(1);
  ALBION_CHECK_AS(UsageError, std::isfinite(penalty) && penalty > 0,
                  "generate: --repetition-penalty must be positive, got ", penalty);
  ALBION_CHECK_AS(UsageError, !o.temperature || (std::isfinite(*o.temperature) && *o.temperature > 0),
                  "generate: --temperature must be positive, got ", o.temperature.value_or(0));
  ALBION_CHECK_AS(UsageError, !o.prompt || !o.prompt->empty(), "generate: --prompt is empty");
  if (!o.chat.empty()) {  // a typo fails here, not after decrypting
    try {
      tokenizers::parse_chat_template(o.chat);
    } catch (const UsageError& error) {
      throw UsageError(str_cat("generate: --chat: ", error.what()));
    }
  }
  ALBION_CHECK_AS(UsageError, o.chat.empty() || o.prompt || o.interactive, "generate: --chat needs --prompt");
  ALBION_CHECK_AS(UsageError, !o.interactive || !o.chat.empty(),
                  "generate: --interactive needs --chat (a conversation is rendered in a chat template)");
  ALBION_CHECK_AS(UsageError, o.system.empty() || !o.chat.empty(), "generate: --system needs --chat");
  return o;
}

}  // namespace

void check_generate_command(const CommandArgs& args) {
  if (asks_for_help(args)) return;  // the ranks print it
  const std::string checkpoint = parse_generate_command(args)->checkpoint;
  if (!models::holds_hugging_face_model(checkpoint)) resolve_checkpoint(checkpoint, "generate");
}

int run_generate(const CommandArgs& args, const ProcessEnvironment& env) {
  const std::optional<GenerateOptions> parsed = parse_generate_command(args);
  if (!parsed) return 0;
  const GenerateOptions& o = *parsed;
  const bool published = models::holds_hugging_face_model(o.checkpoint);
  const fs::path path = published ? fs::path(o.checkpoint) : resolve_checkpoint(o.checkpoint, "generate");
  const c10::Device device = runtime::choose_device(o.device, env.local_rank, "generate: --device");

  if (env.world_size == 1) return generate(o, env, path, published, device, {});
  // One model cut over every rank: each draws the same tokens from its part, rank 0 prints them.
  auto on_rank = [&](checkpoint::RankGroup& job, const collectives::ProcessGroups& groups) {
    return generate(o, env, path, published, device, {&job, groups.tensor});
  };
  return run_inference_job(device, env.world_size, on_rank);
}

}  // namespace albion::launch
