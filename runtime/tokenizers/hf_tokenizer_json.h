// File: runtime/tokenizers/hf_tokenizer_json.h
// Loaders for byte-level BPE definitions: Hugging Face tokenizer.json (spec "hf:PATH") and
// GPT-2's original vocab.json + merges.txt (spec "gpt2:DIR").
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "runtime/tokenizers/tokenizer.h"

namespace albion::tokenizers {

std::unique_ptr<Tokenizer> load_hf_tokenizer_json(const std::string& path);
// The same from tokenizer.json's text (a downloaded model's: untrusted), `path` naming it in errors.
std::unique_ptr<Tokenizer> parse_hf_tokenizer_json(std::string_view text, const std::string& path);
std::unique_ptr<Tokenizer> load_gpt2_files(const std::string& dir);

}  // namespace albion::tokenizers
