// File: tests/runtime/tokenizers/round_trip_test.cpp
// decode(encode(x)) == x for random valid UTF-8 (all planes, control characters included) and for
// the fixture strings, for every tokenizer, with special tokens both recognised and not; every id
// is below vocab_size(); encoding is the same from many threads at once (the word cache).
#include <gtest/gtest.h>

#include <thread>

#include "runtime/tokenizers/tokenizer.h"
#include "tests/runtime/tokenizers/fixtures.h"

namespace albion::tokenizers {
namespace {

using testing::fixture;

struct Case {
  const char* name;
  std::string spec;
  char32_t exclude = 0xFFFFFFFF;
};

std::vector<Case> all_tokenizers() {
  return {
      {"byte", "byte"},
      {"gpt2_json", "hf:" + fixture("gpt2/tokenizer.json")},
      {"gpt2_files", "gpt2:" + fixture("gpt2")},
      {"llama3_json", "hf:" + fixture("llama3/tokenizer.json")},
      // U+2581 is SentencePiece's own spelling of a space; it decodes to ' ' by design.
      {"sentencepiece", "sentencepiece:" + fixture("sentencepiece/spm.model"), 0x2581},
  };
}

class RoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(RoundTrip, RandomUnicodeAndFixtureStrings) {
  const auto tok = load_tokenizer(GetParam().spec);
  std::mt19937 rng(1234);
  std::vector<std::string> texts;
  for (const auto& s : testing::expected()["strings"]) texts.push_back(s.get<std::string>());
  for (int i = 0; i < 300; ++i) {
    texts.push_back(testing::random_utf8(rng, std::uniform_int_distribution<>(0, 80)(rng),
                                         GetParam().exclude));
  }
  texts.push_back(testing::random_utf8(rng, 20000, GetParam().exclude));
  for (const auto& text : texts) {
    for (auto mode : {SpecialTokens::kAsText, SpecialTokens::kRecognize}) {
      const auto ids = tok->encode(text, mode);
      for (TokenId id : ids) ASSERT_LT(id, tok->vocab_size());
      ASSERT_EQ(tok->decode(ids), text) << nlohmann::json(text).dump();
    }
  }
}

TEST_P(RoundTrip, SameIdsFromManyThreads) {
  const auto tok = load_tokenizer(GetParam().spec);
  std::mt19937 rng(99);
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back(testing::random_utf8(rng, 50, GetParam().exclude));
  std::vector<std::vector<TokenId>> want;
  for (const auto& t : texts) want.push_back(tok->encode(t));
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (std::size_t i = 0; i < texts.size(); ++i) {
          if (tok->encode(texts[(i + t * 7) % texts.size()]) != want[(i + t * 7) % texts.size()]) {
            ++failures[t];
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

INSTANTIATE_TEST_SUITE_P(AllTokenizers, RoundTrip, ::testing::ValuesIn(all_tokenizers()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace albion::tokenizers
