// File: runtime/tokenizers/hf_tokenizer_json.cpp
// Parses Hugging Face tokenizer.json into a BpeDefinition. Accepted: model type BPE (no dropout,
// no subword prefix/suffix, no byte fallback), pre-tokenizers ByteLevel, Split (Isolated, not
// inverted) and Sequence of them, with a ByteLevel among them (that is what makes it byte-level);
// no normalizer; added tokens without lstrip/rstrip/single_word. Anything else is refused with a
// UsageError saying what, rather than encoding differently from the model's own tokenizer.
// The post_processor (e.g. Llama 3 prepending <|begin_of_text|>) is not applied: encode() returns
// the text's tokens only, and callers add document or turn markers themselves. The decoder is
// implied by the ByteLevel pre-tokenizer.
#include "runtime/tokenizers/hf_tokenizer_json.h"

#include <nlohmann/json.hpp>

#include "runtime/base/check.h"
#include "runtime/tokenizers/bpe_definition_builder.h"
#include "runtime/tokenizers/pretokenizer.h"
#include "runtime/tokenizers/read_file.h"
#include "runtime/tokenizers/regex.h"

namespace albion::tokenizers {
namespace {

using nlohmann::json;

struct PreTokenizerConfig {
  std::vector<std::string> patterns;
  bool add_prefix_space = false;
  bool byte_level = false;
};

// Reads an optional boolean field, refusing a value of the wrong type.
bool get_bool(const json& obj, const char* key, bool fallback, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  ALBION_CHECK_AS(UsageError, it->is_boolean(), where, ".", key, " must be true or false");
  return it->get<bool>();
}

std::string get_string(const json& obj, const char* key, const std::string& where) {
  const auto it = obj.find(key);
  ALBION_CHECK_AS(UsageError, it != obj.end() && it->is_string(), where, ".", key,
                  " must be a string");
  return it->get<std::string>();
}

void parse_pre_tokenizer(const json& node, const std::string& where, PreTokenizerConfig& config) {
  if (node.is_null()) return;
  ALBION_CHECK_AS(UsageError, node.is_object(), where, " must be an object");
  const std::string type = get_string(node, "type", where);
  if (type == "Sequence") {
    const auto it = node.find("pretokenizers");
    ALBION_CHECK_AS(UsageError, it != node.end() && it->is_array(), where,
                    ".pretokenizers must be an array");
    for (std::size_t i = 0; i < it->size(); ++i) {
      parse_pre_tokenizer((*it)[i], str_cat(where, ".pretokenizers[", i, "]"), config);
    }
  } else if (type == "ByteLevel") {
    config.byte_level = true;
    config.add_prefix_space = get_bool(node, "add_prefix_space", false, where);
    if (get_bool(node, "use_regex", true, where)) config.patterns.emplace_back(kGpt2Pattern);
  } else if (type == "Split") {
    const auto pattern = node.find("pattern");
    ALBION_CHECK_AS(UsageError, pattern != node.end() && pattern->is_object(), where,
                    ".pattern must be {\"Regex\": ...} or {\"String\": ...}");
    if (pattern->contains("Regex")) {
      config.patterns.push_back(get_string(*pattern, "Regex", where + ".pattern"));
    } else {
      config.patterns.push_back(regex_escape(get_string(*pattern, "String", where + ".pattern")));
    }
    const std::string behavior = get_string(node, "behavior", where);
    ALBION_CHECK_AS(UsageError, behavior == "Isolated", where, ": Split behavior '", behavior,
                    "' is not supported (only Isolated)");
    ALBION_CHECK_AS(UsageError, !get_bool(node, "invert", false, where), where,
                    ": inverted Split is not supported");
  } else {
    throw UsageError(str_cat(where, ": pre-tokenizer type '", type,
                             "' is not supported (ByteLevel, Split, Sequence)"));
  }
}

std::string spelled_token(const json& value, const std::string& where) {
  ALBION_CHECK_AS(UsageError, value.is_string(), where, " must be a string");
  return value.get<std::string>();
}

json parse_json_file(const std::string& path, std::string_view text) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw UsageError(str_cat(path, ":", line_of_offset(text, e.byte == 0 ? 0 : e.byte - 1),
                             ": not valid JSON: ", e.what()));
  } catch (const json::exception& e) {  // e.g. a number too large for a double (found by fuzzing)
    throw UsageError(str_cat(path, ": not valid JSON: ", e.what()));
  }
}

std::unique_ptr<Tokenizer> tokenizer_from_json(const std::string& path, const json& root) {
  ALBION_CHECK_AS(UsageError, root.is_object(), path, ": expected a JSON object at the top");

  const auto normalizer = root.find("normalizer");
  if (normalizer != root.end() && !normalizer->is_null()) {
    throw UsageError(str_cat(path, ": normalizer ",
                             normalizer->is_object() ? normalizer->value("type", "?") : "?",
                             " is not supported (byte-level BPE files have none)"));
  }

  PreTokenizerConfig pre;
  const auto pre_node = root.find("pre_tokenizer");
  if (pre_node != root.end()) parse_pre_tokenizer(*pre_node, path + ": pre_tokenizer", pre);
  ALBION_CHECK_AS(UsageError, pre.byte_level, path,
                  ": not a byte-level BPE (no ByteLevel pre-tokenizer)");

  const auto model_it = root.find("model");
  ALBION_CHECK_AS(UsageError, model_it != root.end() && model_it->is_object(), path,
                  ": missing \"model\"");
  const json& model = *model_it;
  const std::string where = path + ": model";
  const std::string type = model.value("type", "BPE");
  ALBION_CHECK_AS(UsageError, type == "BPE", path, ": model type '", type,
                  "' is not supported here (only BPE)");
  const auto dropout = model.find("dropout");
  ALBION_CHECK_AS(UsageError, dropout == model.end() || dropout->is_null(), path,
                  ": BPE dropout is not supported");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const auto it = model.find(key);
    const bool unset = it == model.end() || it->is_null() ||
                       (it->is_string() && it->get<std::string>().empty());
    ALBION_CHECK_AS(UsageError, unset, path, ": model.", key,
                    " is not supported in a byte-level BPE");
  }
  ALBION_CHECK_AS(UsageError, !get_bool(model, "byte_fallback", false, where), path,
                  ": model.byte_fallback is not supported in a byte-level BPE");

  BpeDefinitionBuilder builder(path, "tokenizer.json");
  builder.set_pre_tokenizer(pre.patterns, pre.add_prefix_space);
  builder.set_ignore_merges(get_bool(model, "ignore_merges", false, where));

  const auto vocab = model.find("vocab");
  ALBION_CHECK_AS(UsageError, vocab != model.end() && vocab->is_object(), path,
                  ": model.vocab must be an object of token -> id");

  // Added tokens first: their content may be spelled outside GPT-2's alphabet.
  const auto added = root.find("added_tokens");
  if (added != root.end() && !added->is_null()) {
    ALBION_CHECK_AS(UsageError, added->is_array(), path, ": added_tokens must be an array");
    for (std::size_t i = 0; i < added->size(); ++i) {
      const json& t = (*added)[i];
      const std::string at = str_cat(path, ": added_tokens[", i, "]");
      ALBION_CHECK_AS(UsageError, t.is_object() && t.contains("id") && t["id"].is_number_unsigned(),
                      at, ".id must be a non-negative integer");
      const std::string content = get_string(t, "content", at);
      for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
        ALBION_CHECK_AS(UsageError, !get_bool(t, flag, false, at), at, " ('", content, "'): ",
                        flag, " is not supported");
      }
      builder.add_added_token(content, t["id"].get<std::uint64_t>(),
                              get_bool(t, "special", false, at), at);
    }
  }
  for (const auto& [spelled, id] : vocab->items()) {
    ALBION_CHECK_AS(UsageError, id.is_number_unsigned(), path, ": model.vocab['", spelled,
                    "'] must be a non-negative integer");
    builder.add_vocab(spelled, id.get<std::uint64_t>(), str_cat(path, ": model.vocab"));
  }

  const auto merges = model.find("merges");
  ALBION_CHECK_AS(UsageError, merges != model.end() && merges->is_array(), path,
                  ": model.merges is missing or not an array");
  for (std::size_t i = 0; i < merges->size(); ++i) {
    const json& m = (*merges)[i];
    const std::string at = str_cat(path, ": model.merges[", i, "]");
    if (m.is_string()) {
      builder.add_merge_line(m.get<std::string>(), at);
    } else {
      ALBION_CHECK_AS(UsageError, m.is_array() && m.size() == 2, at,
                      " must be \"left right\" or [left, right]");
      builder.add_merge(spelled_token(m[0], at), spelled_token(m[1], at), at);
    }
  }
  return make_bpe_tokenizer(builder.finish());
}

}  // namespace

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path) {
  return parse_hf_tokenizer_json(read_definition_file(path), path);
}

std::unique_ptr<Tokenizer> parse_hf_tokenizer_json(std::string_view text, const std::string& path) {
  const json root = parse_json_file(path, text);
  try {
    return tokenizer_from_json(path, root);
  } catch (const json::exception& e) {
    // A field of an unexpected type that the checks above did not anticipate.
    throw UsageError(str_cat(path, ": unexpected tokenizer.json structure: ", e.what()));
  }
}

std::unique_ptr<Tokenizer> load_gpt2_files(const std::string& dir) {
  const std::string vocab_path = dir + "/vocab.json";
  const std::string merges_path = dir + "/merges.txt";
  const json vocab = parse_json_file(vocab_path, read_definition_file(vocab_path));
  ALBION_CHECK_AS(UsageError, vocab.is_object(), vocab_path,
                  ": expected a JSON object of token -> id");

  BpeDefinitionBuilder builder(vocab_path, "vocab.json + merges.txt");
  builder.set_pre_tokenizer({std::string(kGpt2Pattern)}, false);
  // GPT-2's files carry no added-token list; its one special token sits in the vocabulary.
  const auto eot = vocab.find("<|endoftext|>");
  if (eot != vocab.end() && eot->is_number_unsigned()) {
    builder.add_added_token("<|endoftext|>", eot->get<std::uint64_t>(), true, vocab_path);
  }
  for (const auto& [spelled, id] : vocab.items()) {
    ALBION_CHECK_AS(UsageError, id.is_number_unsigned(), vocab_path, ": entry '", spelled,
                    "' must map to a non-negative integer");
    builder.add_vocab(spelled, id.get<std::uint64_t>(), vocab_path);
  }

  const std::string merges_text = read_definition_file(merges_path);
  std::size_t line_number = 0, pos = 0;
  while (pos < merges_text.size()) {
    std::size_t end = merges_text.find('\n', pos);
    if (end == std::string::npos) end = merges_text.size();
    std::string_view line(merges_text.data() + pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_number == 1 && line.starts_with("#version"))) continue;
    builder.add_merge_line(line, str_cat(merges_path, ":", line_number));
  }
  ALBION_CHECK_AS(UsageError, builder.merge_count() > 0, merges_path, ": contains no merges");
  return make_bpe_tokenizer(builder.finish());
}

}  // namespace albion::tokenizers
