// File: runtime/tokenizers/byte_tokenizer.cpp
// For tiny demos and tests: no file, no training, vocab 257. Input must be valid UTF-8 like every
// other tokenizer's, so a dataset does not depend on which tokenizer noticed bad input.
#include "runtime/tokenizers/byte_tokenizer.h"

#include "runtime/base/check.h"
#include "runtime/tokenizers/content_hash.h"
#include "runtime/tokenizers/special_token_matcher.h"
#include "runtime/tokenizers/utf8.h"

namespace albion::tokenizers {
namespace {

constexpr TokenId kEndOfText = 256;
constexpr std::string_view kEndOfTextText = "<|endoftext|>";

class ByteTokenizer final : public Tokenizer {
 public:
  ByteTokenizer()
      : special_{{std::string(kEndOfTextText), kEndOfText}}, matcher_(special_) {
    ContentHasher h;
    h.add_string("albion byte tokenizer v1");
    h.add_string(kEndOfTextText);
    h.add_u64(kEndOfText);
    hash_ = h.finish();
  }

  std::vector<TokenId> encode(std::string_view text, SpecialTokens special) const override {
    require_valid_utf8(text, "encode");
    std::vector<TokenId> out;
    out.reserve(text.size());
    auto bytes = [&](std::string_view piece) {
      for (char c : piece) out.push_back(static_cast<unsigned char>(c));
    };
    if (special == SpecialTokens::kRecognize) {
      matcher_.split(text, bytes, [&](TokenId id) { out.push_back(id); });
    } else {
      bytes(text);
    }
    return out;
  }

  std::string decode(std::span<const TokenId> ids) const override {
    std::string out;
    out.reserve(ids.size());
    for (TokenId id : ids) {
      if (id < 256) {
        out.push_back(static_cast<char>(id));
      } else {
        ALBION_CHECK_AS(UsageError, id == kEndOfText, "decode: token id ", id,
                        " is not in the vocabulary (size 257)");
        out += kEndOfTextText;
      }
    }
    return out;
  }

  std::size_t vocab_size() const override { return 257; }
  const std::vector<SpecialToken>& special_tokens() const override { return special_; }
  std::optional<TokenId> end_of_text() const override { return kEndOfText; }
  std::string content_hash() const override { return hash_; }
  std::string description() const override { return "byte tokenizer, 257 tokens"; }

 private:
  std::vector<SpecialToken> special_;
  SpecialTokenMatcher matcher_;
  std::string hash_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

}  // namespace albion::tokenizers
