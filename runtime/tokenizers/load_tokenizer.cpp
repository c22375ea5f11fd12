// File: runtime/tokenizers/load_tokenizer.cpp
// load_tokenizer(spec): the one dispatch from a spec string to a tokenizer (see tokenizer.h).
#include "runtime/base/check.h"
#include "runtime/tokenizers/byte_tokenizer.h"
#include "runtime/tokenizers/hf_tokenizer_json.h"
#include "runtime/tokenizers/sentencepiece_tokenizer.h"
#include "runtime/tokenizers/tokenizer.h"

namespace albion::tokenizers {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec) {
  const auto value = [&](std::string_view prefix) {
    const std::string path = spec.substr(prefix.size());
    ALBION_CHECK_AS(UsageError, !path.empty(), "tokenizer spec '", spec, "' names no file");
    return path;
  };
  if (spec == "byte") return make_byte_tokenizer();
  if (spec.starts_with("hf:")) return load_hf_tokenizer_json(value("hf:"));
  if (spec.starts_with("gpt2:")) return load_gpt2_files(value("gpt2:"));
  if (spec.starts_with("sentencepiece:")) return load_sentencepiece(value("sentencepiece:"));
  throw UsageError(str_cat("unknown tokenizer spec '", spec,
                           "' (expected byte, hf:PATH/tokenizer.json, gpt2:DIR or "
                           "sentencepiece:PATH.model)"));
}

}  // namespace albion::tokenizers
