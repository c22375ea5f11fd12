// File: runtime/tokenizers/bpe_definition_builder.h
// Turns the GPT-2-spelled pieces of a byte-level BPE file (vocabulary entries, merge lines, added
// tokens) into a BpeDefinition of raw bytes and id pairs, checking each piece as it comes so the
// error names the place in the file: an id used twice, a token outside GPT-2's byte alphabet, a
// merge whose side or result is not in the vocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/tokenizers/bpe_model.h"
#include "runtime/tokenizers/bpe_tokenizer.h"

namespace albion::tokenizers {

class BpeDefinitionBuilder {
 public:
  BpeDefinitionBuilder(std::string file, std::string source);

  void set_pre_tokenizer(std::vector<std::string> patterns, bool add_prefix_space);
  void set_ignore_merges(bool ignore_merges) { ignore_merges_ = ignore_merges; }
  // `where` prefixes error messages ("FILE: added_tokens[3]", "FILE:12").
  void add_added_token(const std::string& content, std::uint64_t id, bool special,
                       std::string_view where);
  void add_vocab(const std::string& spelled, std::uint64_t id, std::string_view where);
  // Merges must come after the whole vocabulary. "left right", split at the one space.
  void add_merge_line(std::string_view line, std::string_view where);
  void add_merge(const std::string& left, const std::string& right, std::string_view where);
  std::size_t merge_count() const { return merges_.size(); }

  BpeDefinition finish();

 private:
  TokenId lookup(const std::string& spelled, std::string_view what, std::string_view where) const;

  std::string file_;
  std::string source_;
  std::vector<std::string> patterns_;
  bool add_prefix_space_ = false;
  bool ignore_merges_ = false;
  std::unordered_map<std::string, TokenId> spelled_to_id_;
  std::unordered_map<TokenId, std::string> added_by_id_;
  std::vector<AddedToken> added_;
  std::vector<std::string> vocab_;
  std::vector<bool> defined_;
  std::vector<MergeRule> merges_;
};

}  // namespace albion::tokenizers
