// File: tests/runtime/tokenizers/reference_ids_test.cpp
// Albion's tokenizers must produce exactly the ids that independent implementations (Python
// `tokenizers`, `sentencepiece`, cross-checked with tiktoken) recorded in fixtures/expected.json.
#include <gtest/gtest.h>

#include "runtime/tokenizers/tokenizer.h"
#include "tests/runtime/tokenizers/fixtures.h"

namespace albion::tokenizers {
namespace {

using testing::expected;
using testing::fixture;

std::string shown(const std::string& s) { return nlohmann::json(s).dump(); }

void expect_reference_ids(const Tokenizer& tok, const std::string& key, bool with_recognize) {
  const auto& strings = expected()["strings"];
  const auto& want = expected()[key];
  for (std::size_t i = 0; i < strings.size(); ++i) {
    const std::string s = strings[i].get<std::string>();
    EXPECT_EQ(tok.encode(s, SpecialTokens::kAsText),
              want["as_text"][i].get<std::vector<TokenId>>())
        << key << " kAsText " << shown(s);
    if (with_recognize) {
      EXPECT_EQ(tok.encode(s, SpecialTokens::kRecognize),
                want["recognize"][i].get<std::vector<TokenId>>())
          << key << " kRecognize " << shown(s);
    }
  }
}

TEST(ReferenceIds, Gpt2StyleTokenizerJson) {
  const auto tok = load_tokenizer("hf:" + fixture("gpt2/tokenizer.json"));
  EXPECT_EQ(tok->vocab_size(), 3003u);
  EXPECT_EQ(tok->end_of_text(), std::optional<TokenId>(0));
  expect_reference_ids(*tok, "gpt2", true);
}

TEST(ReferenceIds, Gpt2VocabAndMerges) {
  const auto tok = load_tokenizer("gpt2:" + fixture("gpt2"));
  EXPECT_EQ(tok->vocab_size(), 3000u);
  EXPECT_EQ(tok->end_of_text(), std::optional<TokenId>(0));
  expect_reference_ids(*tok, "gpt2_files", true);
}

TEST(ReferenceIds, Llama3StyleTokenizerJson) {
  const auto tok = load_tokenizer("hf:" + fixture("llama3/tokenizer.json"));
  EXPECT_EQ(tok->vocab_size(), 3005u);
  EXPECT_EQ(tok->end_of_text(), std::optional<TokenId>(3001));
  expect_reference_ids(*tok, "llama3", true);
}

TEST(ReferenceIds, SentencePiece) {
  const auto tok = load_tokenizer("sentencepiece:" + fixture("sentencepiece/spm.model"));
  EXPECT_EQ(tok->vocab_size(), 2000u);
  expect_reference_ids(*tok, "sentencepiece", false);
}

TEST(ReferenceIds, ContentHashIgnoresFormattingButNotContent) {
  const auto json = load_tokenizer("hf:" + fixture("gpt2/tokenizer.json"));
  const auto again = load_tokenizer("hf:" + fixture("gpt2/tokenizer.json"));
  const auto files = load_tokenizer("gpt2:" + fixture("gpt2"));
  const auto llama = load_tokenizer("hf:" + fixture("llama3/tokenizer.json"));
  EXPECT_EQ(json->content_hash(), again->content_hash());
  EXPECT_EQ(json->content_hash().size(), 64u);
  EXPECT_NE(json->content_hash(), files->content_hash());  // the ChatML tokens differ
  EXPECT_NE(json->content_hash(), llama->content_hash());
  // Re-serialising the JSON with other whitespace and key order keeps the hash.
  testing::ScratchDir dir;
  const auto parsed = nlohmann::json::parse(testing::read_file(fixture("gpt2/tokenizer.json")));
  const auto path = dir.write("tokenizer.json", parsed.dump(1));
  EXPECT_EQ(load_tokenizer("hf:" + path)->content_hash(), json->content_hash());
}

}  // namespace
}  // namespace albion::tokenizers
