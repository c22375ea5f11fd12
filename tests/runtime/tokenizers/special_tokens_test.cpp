// File: tests/runtime/tokenizers/special_tokens_test.cpp
// Special tokens both ways: recognised only with kRecognize (a document cannot forge them), kept
// as ordinary text with kAsText, and decoded back to their text; the byte tokenizer's ids.
#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/base/error.h"
#include "runtime/tokenizers/tokenizer.h"
#include "tests/runtime/tokenizers/fixtures.h"

namespace albion::tokenizers {
namespace {

using testing::fixture;

bool contains(const std::vector<TokenId>& ids, TokenId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

TEST(ByteTokenizer, IdsAreBytesAndEndOfTextIs256) {
  const auto tok = load_tokenizer("byte");
  EXPECT_EQ(tok->vocab_size(), 257u);
  EXPECT_EQ(tok->end_of_text(), std::optional<TokenId>(256));
  ASSERT_EQ(tok->special_tokens().size(), 1u);
  EXPECT_EQ(tok->special_tokens()[0].text, "<|endoftext|>");
  EXPECT_EQ(tok->encode("a\xc3\xa9"), (std::vector<TokenId>{97, 0xC3, 0xA9}));
  EXPECT_EQ(tok->encode("a<|endoftext|>b", SpecialTokens::kRecognize),
            (std::vector<TokenId>{97, 256, 98}));
  EXPECT_EQ(tok->encode("<|endoftext|>", SpecialTokens::kAsText).size(), 13u);
  EXPECT_EQ(tok->decode(std::vector<TokenId>{104, 256, 105}), "h<|endoftext|>i");
  EXPECT_EQ(tok->description(), "byte tokenizer, 257 tokens");
  EXPECT_EQ(tok->content_hash(), load_tokenizer("byte")->content_hash());
  EXPECT_THROW(tok->decode(std::vector<TokenId>{257}), UsageError);
}

TEST(SpecialTokens, Gpt2StyleRecognisedOnlyOnRequest) {
  const auto tok = load_tokenizer("hf:" + fixture("gpt2/tokenizer.json"));
  const std::string text = "x<|im_start|>user\nhi<|im_end|><|endoftext|>";
  const auto plain = tok->encode(text, SpecialTokens::kAsText);
  const auto rec = tok->encode(text, SpecialTokens::kRecognize);
  for (TokenId id : {0u, 3000u, 3001u}) {
    EXPECT_FALSE(contains(plain, id)) << id;
    EXPECT_TRUE(contains(rec, id)) << id;
  }
  EXPECT_EQ(tok->decode(plain), text);
  EXPECT_EQ(tok->decode(rec), text);
  // The non-special added token "<sep>" is always recognised, as Hugging Face does.
  EXPECT_EQ(tok->encode("<sep>", SpecialTokens::kAsText), (std::vector<TokenId>{3002}));
  // Longest match wins and partial special strings stay text.
  EXPECT_EQ(tok->encode("<|endoftext|", SpecialTokens::kRecognize),
            tok->encode("<|endoftext|", SpecialTokens::kAsText));
  const auto& specials = tok->special_tokens();
  EXPECT_EQ(specials.size(), 3u);  // <sep> is not special
}

TEST(SpecialTokens, Llama3Style) {
  const auto tok = load_tokenizer("hf:" + fixture("llama3/tokenizer.json"));
  const auto rec = tok->encode("<|begin_of_text|>hi<|eot_id|>", SpecialTokens::kRecognize);
  ASSERT_GE(rec.size(), 3u);
  EXPECT_EQ(rec.front(), 3000u);
  EXPECT_EQ(rec.back(), 3004u);
  EXPECT_EQ(tok->decode(rec), "<|begin_of_text|>hi<|eot_id|>");
  EXPECT_EQ(tok->description(), "byte-level BPE from tokenizer.json, 3005 tokens");
}

TEST(SpecialTokens, SentencePieceControlSymbols) {
  const auto tok = load_tokenizer("sentencepiece:" + fixture("sentencepiece/spm.model"));
  ASSERT_TRUE(tok->end_of_text().has_value());
  const TokenId eos = *tok->end_of_text();
  const auto rec = tok->encode("Hello</s> world</s>", SpecialTokens::kRecognize);
  const auto plain = tok->encode("Hello</s> world</s>", SpecialTokens::kAsText);
  EXPECT_EQ(std::count(rec.begin(), rec.end(), eos), 2);
  EXPECT_FALSE(contains(plain, eos));
  EXPECT_EQ(tok->decode(rec), "Hello</s> world</s>");
  EXPECT_EQ(tok->decode(plain), "Hello</s> world</s>");
}

}  // namespace
}  // namespace albion::tokenizers
