// File: runtime/tokenizers/bpe_tokenizer.cpp
// BpeTokenizer: the Tokenizer over a BpeModel. Input is validated as UTF-8 once, up front, so the
// regexes can skip their own checks. Decoding concatenates each token's raw bytes (added tokens
// decode to their text), which makes decode(encode(x)) == x by construction.
#include "runtime/tokenizers/bpe_tokenizer.h"

#include <algorithm>

#include "runtime/base/check.h"
#include "runtime/tokenizers/content_hash.h"
#include "runtime/tokenizers/pretokenizer.h"
#include "runtime/tokenizers/special_token_matcher.h"
#include "runtime/tokenizers/utf8.h"

namespace albion::tokenizers {
namespace {

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(BpeDefinition def)
      : source_(def.source),
        pre_tokenizer_(def.pre_tokenizer_patterns, def.file),
        add_prefix_space_(def.add_prefix_space),
        model_(std::move(def.vocab), std::move(def.defined), def.merges, def.ignore_merges,
               def.file),
        added_(std::move(def.added)) {
    vocab_size_ = model_.size();
    std::vector<SpecialToken> always;
    std::vector<SpecialToken> all;
    for (const auto& a : added_) {
      ALBION_CHECK_AS(UsageError, !a.text.empty(), def.file, ": added token ", a.id,
                      " has empty content");
      vocab_size_ = std::max<std::size_t>(vocab_size_, std::size_t{a.id} + 1);
      all.push_back({a.text, a.id});
      if (a.special) {
        special_.push_back({a.text, a.id});
      } else {
        always.push_back({a.text, a.id});
      }
    }
    added_text_.assign(vocab_size_, nullptr);
    for (const auto& a : added_) added_text_[a.id] = &a.text;
    always_ = SpecialTokenMatcher(always);
    recognize_ = SpecialTokenMatcher(all);
    end_of_text_ = find_end_of_text(special_);
    hash_ = compute_hash();
  }

  std::vector<TokenId> encode(std::string_view text, SpecialTokens special) const override {
    require_valid_utf8(text, "encode");
    std::vector<TokenId> out;
    out.reserve(text.size() / 3 + 4);
    const SpecialTokenMatcher& matcher =
        special == SpecialTokens::kRecognize ? recognize_ : always_;
    matcher.split(
        text, [&](std::string_view piece) { encode_plain(piece, out); },
        [&](TokenId id) { out.push_back(id); });
    return out;
  }

  std::string decode(std::span<const TokenId> ids) const override {
    std::string out;
    for (TokenId id : ids) {
      if (id < added_text_.size() && added_text_[id] != nullptr) {
        out += *added_text_[id];
        continue;
      }
      ALBION_CHECK_AS(UsageError, model_.defined(id), "decode: token id ", id,
                      " is not in the vocabulary (size ", vocab_size_, ")");
      out += model_.token_bytes(id);
    }
    return out;
  }

  std::size_t vocab_size() const override { return vocab_size_; }
  const std::vector<SpecialToken>& special_tokens() const override { return special_; }
  std::optional<TokenId> end_of_text() const override { return end_of_text_; }
  std::string content_hash() const override { return hash_; }
  std::string description() const override {
    return str_cat("byte-level BPE from ", source_, ", ", vocab_size_, " tokens");
  }

 private:
  void encode_plain(std::string_view text, std::vector<TokenId>& out) const {
    auto emit = [&](std::string_view word) { model_.encode_word(word, out); };
    if (add_prefix_space_ && !text.starts_with(' ')) {
      const std::string spaced = str_cat(" ", text);
      pre_tokenizer_.split(spaced, emit);
    } else {
      pre_tokenizer_.split(text, emit);
    }
  }

  std::string compute_hash() const {
    ContentHasher h;
    h.add_string("albion byte-level BPE v1");
    h.add_u64(pre_tokenizer_.regexes().size());
    for (const auto& r : pre_tokenizer_.regexes()) h.add_string(r.pattern());
    h.add_u64(add_prefix_space_);
    h.add_u64(model_.ignore_merges());
    h.add_u64(model_.size());
    for (TokenId id = 0; id < model_.size(); ++id) {
      h.add_u64(model_.defined(id));
      h.add_string(model_.token_bytes(id));
    }
    h.add_u64(model_.merges().size());
    for (const auto& m : model_.merges()) {
      h.add_u64(m.left);
      h.add_u64(m.right);
    }
    std::vector<const AddedToken*> sorted;
    for (const auto& a : added_) sorted.push_back(&a);
    std::sort(sorted.begin(), sorted.end(),
              [](const AddedToken* a, const AddedToken* b) { return a->id < b->id; });
    h.add_u64(sorted.size());
    for (const auto* a : sorted) {
      h.add_u64(a->id);
      h.add_string(a->text);
      h.add_u64(a->special);
    }
    return h.finish();
  }

  std::string source_;
  PreTokenizer pre_tokenizer_;
  bool add_prefix_space_;
  BpeModel model_;
  std::vector<AddedToken> added_;
  std::vector<const std::string*> added_text_;  // id -> added token text, or null
  std::size_t vocab_size_ = 0;
  std::vector<SpecialToken> special_;
  SpecialTokenMatcher always_;
  SpecialTokenMatcher recognize_;
  std::optional<TokenId> end_of_text_;
  std::string hash_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_bpe_tokenizer(BpeDefinition definition) {
  return std::make_unique<BpeTokenizer>(std::move(definition));
}

std::optional<TokenId> find_end_of_text(const std::vector<SpecialToken>& tokens) {
  for (std::string_view name : {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"}) {
    for (const auto& t : tokens) {
      if (t.text == name) return t.id;
    }
  }
  return std::nullopt;
}

}  // namespace albion::tokenizers
