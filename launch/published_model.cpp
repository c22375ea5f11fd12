// File: launch/published_model.cpp
#include "launch/published_model.h"

#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>

#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/models/bf16_inference.h"
#include "runtime/models/hf_import.h"
#include "runtime/tokenizers/chat_template.h"

namespace albion::launch {

namespace fs = std::filesystem;

namespace {

// `path` parsed; a discarded value when it is not JSON (the readers name the file).
nlohmann::json read_json(const fs::path& path) {
  std::ifstream file(path);
  return nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

std::vector<PublishedTokenizer> published_tokenizers(const fs::path& directory, const std::string& command,
                                                     bool printing, std::vector<std::string>* specs) {
  std::vector<std::string> found;
  if (fs::is_regular_file(directory / "tokenizer.json")) {
    found.push_back("hf:" + (directory / "tokenizer.json").string());
  }
  if (fs::is_regular_file(directory / "vocab.json") && fs::is_regular_file(directory / "merges.txt")) {
    found.push_back("gpt2:" + directory.string());
  }
  if (fs::is_regular_file(directory / "tokenizer.model")) {
    found.push_back("sentencepiece:" + (directory / "tokenizer.model").string());
  }
  std::vector<PublishedTokenizer> tokenizers;
  for (const std::string& spec : found) {
    try {
      tokenizers.push_back({spec, tokenizers::load_tokenizer(spec)});
    } catch (const UsageError& error) {
      if (printing) log::warning(command, ": ", spec, " cannot be read (", error.what(), ")");
    }
  }
  if (specs) *specs = std::move(found);
  return tokenizers;
}

models::ModelConfig published_model_config(const fs::path& directory, std::int64_t tensor_degree,
                                           const std::string& command, bool printing) {
  const fs::path config_path = directory / "config.json";
  models::ModelConfig config = models::hugging_face_model_config(read_json(config_path), config_path.string());
  if (config.pad_vocabulary_for(tensor_degree) && printing) {
    log::info(command, ": the vocabulary of ", config.vocab_in_use(), " cut ", tensor_degree, " ways as ",
              config.vocab_size, " rows, the padding masked");
  }
  return config;
}

std::shared_ptr<models::CausalLm> load_published_model(const fs::path& directory, const models::ModelConfig& config,
                                                       const c10::Device& device,
                                                       std::shared_ptr<collectives::Communicator> tensor_group,
                                                       bool bf16) {
  std::shared_ptr<models::CausalLm> model =
      models::make_model(config, at::kCPU, std::move(tensor_group), models::InitialValues::kNone);
  models::load_hugging_face_weights(*model, directory);
  if (bf16) models::hold_for_bf16_inference(*model);  // before the move: the device never holds fp32
  model->to(device);
  return model;
}

std::optional<std::string> published_chat_template(const fs::path& directory) {
  const fs::path path = directory / "tokenizer_config.json";
  if (!fs::is_regular_file(path)) return std::nullopt;
  const nlohmann::json json = read_json(path);
  const auto it = json.is_object() ? json.find("chat_template") : json.end();
  if (it == json.end() || it->is_null()) return std::nullopt;
  for (const char* name : {"llama3", "llama3.1", "chatml", "qwen2.5"}) {
    if (*it == tokenizers::hugging_face_chat_template(tokenizers::parse_chat_template(name))) return name;
  }
  return "";
}

namespace {

// A JSON object file; UsageError naming it otherwise.
nlohmann::json read_json_object(const fs::path& path) {
  nlohmann::json json = read_json(path);
  ALBION_CHECK_AS(UsageError, json.is_object(), path.string(), ": not a JSON object");
  return json;
}

// eos_token_id of `json` (read from `path`): none when unset.
std::vector<std::int64_t> end_ids_in(const nlohmann::json& json, const fs::path& path) {
  const auto it = json.find("eos_token_id");
  if (it == json.end() || it->is_null()) return {};
  const auto id = [&](const nlohmann::json& value) {
    ALBION_CHECK_AS(UsageError, value.is_number_integer() && value.get<std::int64_t>() >= 0, path.string(),
                    ": eos_token_id must be a token id or a list of them, got ", it->dump());
    return value.get<std::int64_t>();
  };
  std::vector<std::int64_t> ids;
  if (it->is_array()) {
    for (const nlohmann::json& value : *it) ids.push_back(id(value));
  } else {
    ids.push_back(id(*it));
  }
  return ids;
}

// The sampling `json` (generation_config.json, read from `path`) sets, as transformers reads it.
PublishedSampling sampling_in(const nlohmann::json& json, const fs::path& path) {
  PublishedSampling sampling;
  // The value of `key` if set (not null), checked by `fits`, which says what it must be.
  const auto read = [&]<typename T>(const char* key, T& value, bool (*fits)(const nlohmann::json&), const char* must) {
    const auto it = json.find(key);
    if (it == json.end() || it->is_null()) return;
    ALBION_CHECK_AS(UsageError, fits(*it), path.string(), ": ", key, " must be ", must, ", got ", it->dump());
    value = it->get<T>();
  };
  read("do_sample", sampling.sample, [](const nlohmann::json& v) { return v.is_boolean(); }, "true or false");
  read("top_k", sampling.top_k,
       [](const nlohmann::json& v) { return v.is_number_integer() && v.get<std::int64_t>() >= 0; }, "an integer >= 0");
  read("top_p", sampling.top_p,
       [](const nlohmann::json& v) { return v.is_number() && v.get<double>() > 0 && v.get<double>() <= 1; },
       "in (0, 1]");
  read("temperature", sampling.temperature,
       [](const nlohmann::json& v) { return v.is_number() && v.get<double>() > 0; }, "positive");
  read("repetition_penalty", sampling.repetition_penalty,
       [](const nlohmann::json& v) { return v.is_number() && v.get<double>() > 0; }, "positive");
  // Each with the value at which it does nothing.
  const std::vector<std::pair<const char*, double>> others = {
      {"num_beams", 1},  {"min_p", 0},      {"typical_p", 1},
      {"epsilon_cutoff", 0}, {"eta_cutoff", 0}, {"no_repeat_ngram_size", 0},
      {"encoder_repetition_penalty", 1}, {"diversity_penalty", 0}, {"penalty_alpha", 0}};
  for (const auto& [key, inert] : others) {
    const auto it = json.find(key);
    if (it != json.end() && !it->is_null() && !(it->is_number() && it->get<double>() == inert)) {
      sampling.not_applied.push_back(key);
    }
  }
  return sampling;
}

}  // namespace

PublishedGeneration published_generation(const fs::path& directory) {
  PublishedGeneration generation;
  if (const fs::path path = directory / "generation_config.json"; fs::is_regular_file(path)) {
    const nlohmann::json json = read_json_object(path);
    generation.end_ids = end_ids_in(json, path);
    generation.sampling = sampling_in(json, path);
    generation.sampling_file = path.string();
  }
  if (const fs::path path = directory / "config.json"; generation.end_ids.empty() && fs::is_regular_file(path)) {
    generation.end_ids = end_ids_in(read_json_object(path), path);
  }
  return generation;
}

void load_on_every_rank(checkpoint::RankGroup* ranks, const std::function<void()>& load) {
  std::exception_ptr failure;
  try {
    load();
  } catch (...) {
    failure = std::current_exception();
  }
  if (ranks == nullptr) {
    if (failure) std::rethrow_exception(failure);
    return;
  }
  checkpoint::throw_agreed_failure(*ranks, checkpoint::agree_on_outcome(*ranks, failure), failure);
}

}  // namespace albion::launch
