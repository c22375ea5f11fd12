// File: launch/published_model.h
// A Hugging Face model directory as `albion eval` and `albion generate` run it: the published model
// a fine-tune starts from, or what `ckpt export` wrote. config.json says what model it is, the
// safetensors files hold its weights, and usually its tokenizer's files sit beside them. The
// weights are public, so there is no key and no audit record.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "checkpoint/format/rank_group.h"
#include "collectives/communicator.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/model_config.h"
#include "runtime/tokenizers/tokenizer.h"

namespace albion::launch {

// A tokenizer a directory holds, with the spec that loads it ("hf:DIR/tokenizer.json").
struct PublishedTokenizer {
  std::string spec;
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;
};

// The tokenizers `directory` holds, in the order transformers prefers them: tokenizer.json, GPT-2's
// vocab.json and merges.txt, SentencePiece's tokenizer.model. A file that does not load is left out
// with a warning naming `command` when `printing`. `specs`, when given, receives every spec found,
// loaded or not.
std::vector<PublishedTokenizer> published_tokenizers(const std::filesystem::path& directory, const std::string& command,
                                                     bool printing, std::vector<std::string>* specs = nullptr);

// The model `directory`'s config.json describes (models::hugging_face_model_config). Cut over
// `tensor_degree` ranks, a vocabulary the degree does not divide gets masked padding rows (Note
// [Masked vocabulary padding]), logged when `printing`: exact, so any degree that divides the heads
// serves. UsageError naming config.json and the key it cannot use.
models::ModelConfig published_model_config(const std::filesystem::path& directory, std::int64_t tensor_degree,
                                           const std::string& command, bool printing);

// The model built from `config` with `directory`'s weights (this rank's part of them when
// `tensor_group` cuts it), held for bf16 inference when `bf16`, then moved to `device`.
std::shared_ptr<models::CausalLm> load_published_model(const std::filesystem::path& directory,
                                                       const models::ModelConfig& config, const c10::Device& device,
                                                       std::shared_ptr<collectives::Communicator> tensor_group,
                                                       bool bf16);

// Whether `directory`'s tokenizer_config.json has a chat template: nullopt if not; else the name
// of the Albion template it spells exactly (as `ckpt export` writes a chat fine-tune's), or "" for
// another.
std::optional<std::string> published_chat_template(const std::filesystem::path& directory);

// How the model's authors sample it, as transformers reads generation_config.json: do_sample
// (false: greedy), top_k (0: no cut), top_p, temperature and repetition_penalty, each with
// transformers' default where unset.
struct PublishedSampling {
  bool sample = false;
  std::int64_t top_k = 50;
  double top_p = 1.0;
  double temperature = 1.0;
  double repetition_penalty = 1.0;
  // Settings that would change the text and that Albion's sampler does not apply (num_beams > 1,
  // min_p, ...), by name.
  std::vector<std::string> not_applied;
};

// How the model's authors generate with it.
struct PublishedGeneration {
  // The ids that end a text: eos_token_id (one id or a list) of generation_config.json, else of
  // config.json; none when neither sets it.
  std::vector<std::int64_t> end_ids;
  std::optional<PublishedSampling> sampling;  // nullopt without generation_config.json
  std::string sampling_file;                  // generation_config.json's path, where there is one
};
// UsageError naming the file and key for a value of the wrong type or out of range.
PublishedGeneration published_generation(const std::filesystem::path& directory);

// Runs `load`, which reads the model and what goes with it. In a job (`ranks` not null; collective)
// the ranks agree on the outcome, so a failure on any rank is one error for the job, which rank 0
// reports, as for a checkpoint's audited load.
void load_on_every_rank(checkpoint::RankGroup* ranks, const std::function<void()>& load);

}  // namespace albion::launch
