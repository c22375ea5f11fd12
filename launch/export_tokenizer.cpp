// File: launch/export_tokenizer.cpp
#include "launch/export_tokenizer.h"

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/tokenizers/chat_template.h"
#include "runtime/tokenizers/tokenizer.h"

namespace albion::launch {

namespace fs = std::filesystem;

namespace {

// The files a tokenizer spec names, each with its name in a transformers directory; none for the
// byte-level tokenizer, which transformers does not have.
std::vector<std::pair<fs::path, std::string>> tokenizer_files(const std::string& spec) {
  if (spec.starts_with("hf:")) return {{spec.substr(3), "tokenizer.json"}};
  if (spec.starts_with("gpt2:")) {
    const fs::path directory = spec.substr(5);
    return {{directory / "vocab.json", "vocab.json"}, {directory / "merges.txt", "merges.txt"}};
  }
  if (spec.starts_with("sentencepiece:")) return {{spec.substr(14), "tokenizer.model"}};
  return {};
}

// The tokenizer the run trained with, if its files still hold it; null (with a warning saying
// why, where there was one to export) otherwise.
std::unique_ptr<tokenizers::Tokenizer> trained_tokenizer(const train::RecordedTokenizer& recorded) {
  if (recorded.spec.empty()) return nullptr;  // a checkpoint from before tokenizers were recorded
  std::string changed;
  try {
    std::unique_ptr<tokenizers::Tokenizer> tokenizer = tokenizers::load_tokenizer(recorded.spec);
    if (tokenizer->content_hash() == recorded.hash) return tokenizer;
    changed = "its files have changed";
  } catch (const UsageError& error) {
    changed = error.what();
  }
  log::warning("ckpt export: the model's tokenizer ", recorded.spec, " is not exported (", changed, ")");
  return nullptr;
}

tokenizers::TokenId special_token_id(const tokenizers::Tokenizer& tokenizer, std::string_view text) {
  for (const tokenizers::SpecialToken& special : tokenizer.special_tokens()) {
    if (special.text == text) return special.id;
  }
  throw UsageError(str_cat("ckpt export: tokenizer ", tokenizer.description(), " has no special token ", text));
}

void write_json(const fs::path& path, const nlohmann::json& json) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << json.dump(2) << "\n";
  out.close();
  ALBION_CHECK_AS(SystemError, out.good(), path.string(), ": cannot write");
}

}  // namespace

std::vector<std::string> export_tokenizer_and_sampling(const train::RecordedTokenizer& recorded,
                                                       const config::EvalConfig& sampling, const fs::path& directory) {
  std::vector<std::string> written;
  const std::unique_ptr<tokenizers::Tokenizer> tokenizer = trained_tokenizer(recorded);
  nlohmann::json generation = {{"do_sample", sampling.top_k > 0}};  // Albion's top_k 0 is greedy
  if (sampling.top_k > 0) {
    generation["top_k"] = sampling.top_k;
    generation["top_p"] = sampling.top_p;
    generation["temperature"] = sampling.temperature;
  }
  if (tokenizer) {
    for (const auto& [from, name] : tokenizer_files(recorded.spec)) {
      fs::copy_file(from, directory / name);
      written.push_back(name);
    }
    std::vector<std::int64_t> end_ids;
    const bool chat = !recorded.chat_template.empty() && recorded.chat_template != "none";
    if (chat && !written.empty()) {
      const tokenizers::ChatTemplate chat_template = tokenizers::parse_chat_template(recorded.chat_template);
      const std::string_view end_of_turn = tokenizers::end_of_turn_token(chat_template);
      write_json(directory / "tokenizer_config.json",
                 {{"chat_template", tokenizers::hugging_face_chat_template(chat_template)},
                  {"eos_token", end_of_turn}});
      written.push_back("tokenizer_config.json");
      end_ids.push_back(special_token_id(*tokenizer, end_of_turn));
    }
    if (tokenizer->end_of_text()) end_ids.push_back(*tokenizer->end_of_text());
    if (!end_ids.empty()) generation["eos_token_id"] = end_ids;
  }
  write_json(directory / "generation_config.json", generation);
  written.push_back("generation_config.json");
  return written;
}

}  // namespace albion::launch
