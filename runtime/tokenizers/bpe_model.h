// File: runtime/tokenizers/bpe_model.h
// The byte-level BPE model: a vocabulary of byte strings and ranked merge rules, applied to one
// pre-token at a time. Tokens are held as raw bytes (the GPT-2 spelling is undone at load time).
// Invariants: every single byte has a token (checked at construction, so any valid input
// encodes); a merge's result is the concatenation of its two sides. Immutable after construction
// except for the word cache, which is internally synchronised.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/tokenizers/tokenizer.h"

namespace albion::tokenizers {

struct MergeRule {
  TokenId left;
  TokenId right;
  TokenId result;
};

// Transparent string hash, so maps keyed by std::string can be probed with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // vocab[id] = raw bytes of token id ("" for an id the model does not define); merges in rank
  // order. ignore_merges: a pre-token that is itself a token is emitted whole (Llama 3).
  // Throws UsageError naming `file` when a byte has no token.
  BpeModel(std::vector<std::string> vocab, std::vector<bool> defined,
           const std::vector<MergeRule>& merges, bool ignore_merges, std::string_view file);
  ~BpeModel();

  // Appends the ids of one pre-token (raw bytes) to out.
  void encode_word(std::string_view word, std::vector<TokenId>& out) const;

  const std::string& token_bytes(TokenId id) const { return vocab_[id]; }
  bool defined(TokenId id) const { return id < defined_.size() && defined_[id]; }
  std::size_t size() const { return vocab_.size(); }
  const std::vector<MergeRule>& merges() const { return merges_; }
  bool ignore_merges() const { return ignore_merges_; }
  // Id of the token with exactly these bytes, or -1.
  std::int64_t find(std::string_view bytes) const;

 private:
  struct MergeValue {
    std::uint32_t rank;
    TokenId result;
  };
  // Open-addressing map from (left << 32 | right) to its merge; the innermost lookup of BPE.
  class MergeTable {
   public:
    void build(const std::vector<MergeRule>& merges);
    const MergeValue* find(TokenId left, TokenId right) const;

   private:
    static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};
    std::vector<std::uint64_t> keys_;
    std::vector<MergeValue> values_;
    std::uint64_t mask_ = 0;
    int shift_ = 0;
  };
  class WordCache;

  void merge_short(std::vector<TokenId>& symbols) const;
  void merge_long(std::vector<TokenId>& symbols) const;

  std::vector<std::string> vocab_;
  std::vector<bool> defined_;
  std::vector<MergeRule> merges_;
  TokenMap by_bytes_;
  std::array<TokenId, 256> byte_token_{};
  MergeTable table_;
  bool ignore_merges_;
  std::unique_ptr<WordCache> cache_;
};

}  // namespace albion::tokenizers
