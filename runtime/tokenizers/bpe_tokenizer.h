// File: runtime/tokenizers/bpe_tokenizer.h
// The byte-level BPE Tokenizer: special-token cutting, then the pre-tokenizer regexes, then the
// BPE model on each pre-token. Every byte-level BPE source (tokenizer.json, vocab.json +
// merges.txt, Albion's trainer) is parsed into a BpeDefinition and built here, so they encode
// identically and hash identically for identical content.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/tokenizers/bpe_model.h"
#include "runtime/tokenizers/tokenizer.h"

namespace albion::tokenizers {

struct AddedToken {
  std::string text;
  TokenId id;
  // Special tokens are recognised only with SpecialTokens::kRecognize; the others (Hugging Face's
  // non-special added tokens) are always recognised, as Hugging Face does.
  bool special = true;
};

struct BpeDefinition {
  std::string source;  // for description(): "tokenizer.json", "vocab.json + merges.txt", ...
  std::string file;    // named in error messages
  std::vector<std::string> pre_tokenizer_patterns;  // applied in order (see pretokenizer.h)
  bool add_prefix_space = false;
  bool ignore_merges = false;
  std::vector<std::string> vocab;  // id -> raw bytes
  std::vector<bool> defined;       // id -> whether the model defines it
  std::vector<MergeRule> merges;   // rank order
  std::vector<AddedToken> added;
};

std::unique_ptr<Tokenizer> make_bpe_tokenizer(BpeDefinition definition);

// The end-of-text token among `tokens`: <|endoftext|>, <|end_of_text|>, </s> or <eos>.
std::optional<TokenId> find_end_of_text(const std::vector<SpecialToken>& tokens);

}  // namespace albion::tokenizers
