// File: tests/runtime/tokenizers/bpe_trainer_test.cpp
// The BPE trainer: deterministic, respects the vocabulary size, its in-memory tokenizer and its
// written tokenizer.json agree, and Python `tokenizers` loads that file and encodes exactly as
// Albion does (skipped, not failed, where .venv/bin/python with `tokenizers` is absent).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "runtime/base/error.h"
#include "runtime/tokenizers/bpe_trainer.h"
#include "tests/runtime/tokenizers/fixtures.h"

namespace albion::tokenizers {
namespace {

std::string corpus_text() {
  return testing::read_file(std::string(ALBION_SOURCE_DIR) +
                            "/recipes/corpus/austen/persuasion.txt");
}

TrainedBpe train_small(std::size_t vocab_size) {
  BpeTrainer trainer({.vocab_size = vocab_size, .special_tokens = {"<|endoftext|>", "<|pad|>"}});
  trainer.add_text(corpus_text());
  trainer.add_text("caf\xc3\xa9 caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xe6\x97\xa5\xe6\x9c\xac");
  return trainer.train();
}

TEST(BpeTrainer, VocabularyLayoutAndDeterminism) {
  const TrainedBpe a = train_small(1000);
  const TrainedBpe b = train_small(1000);
  EXPECT_EQ(a.vocab.size() + a.special_tokens.size(), 1000u);
  EXPECT_EQ(a.vocab, b.vocab);
  ASSERT_EQ(a.special_tokens.size(), 2u);
  EXPECT_EQ(a.special_tokens[0].id, 998u);
  EXPECT_EQ(a.special_tokens[1].text, "<|pad|>");
  // The most frequent pair in English prose with GPT-2's regex is " t" or "he"-like, not bytes.
  ASSERT_FALSE(a.merges.empty());
  EXPECT_EQ(a.vocab[a.merges[0].result].size(), 2u);
  const auto tok = make_tokenizer(a);
  EXPECT_EQ(tok->vocab_size(), 1000u);
  EXPECT_EQ(tok->end_of_text(), std::optional<TokenId>(998));
  const std::string text = "Anne Elliot walked to Uppercross.";
  EXPECT_LT(tok->encode(text).size(), text.size() / 2);  // it learned something
}

TEST(BpeTrainer, WrittenJsonLoadsWithSameIdsAndHash) {
  const TrainedBpe bpe = train_small(800);
  testing::ScratchDir dir;
  const std::string path = dir.path() + "/tokenizer.json";
  write_tokenizer_json(bpe, path);
  const auto loaded = load_tokenizer("hf:" + path);
  const auto direct = make_tokenizer(bpe);
  EXPECT_EQ(loaded->content_hash(), direct->content_hash());
  std::mt19937 rng(5);
  for (int i = 0; i < 100; ++i) {
    const std::string text = testing::random_utf8(rng, 60);
    EXPECT_EQ(loaded->encode(text), direct->encode(text));
    EXPECT_EQ(loaded->decode(loaded->encode(text)), text);
  }
}

TEST(BpeTrainer, BadOptionsAndInput) {
  EXPECT_THROW(BpeTrainer({.vocab_size = 200}), UsageError);
  BpeTrainer trainer({.vocab_size = 300});
  try {
    trainer.add_text("ok\xfe");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("byte offset 2"), std::string::npos) << e.what();
  }
}

TEST(BpeTrainer, PythonTokenizersEncodesIdentically) {
  const std::string python = std::string(ALBION_SOURCE_DIR) + "/.venv/bin/python";
  if (!std::filesystem::exists(python) ||
      std::system((python + " -c 'import tokenizers' >/dev/null 2>&1").c_str()) != 0) {
    GTEST_SKIP() << "no " << python << " with the `tokenizers` package";
  }
  const TrainedBpe bpe = train_small(1500);
  const auto tok = make_tokenizer(bpe);
  testing::ScratchDir dir;
  write_tokenizer_json(bpe, dir.path() + "/tokenizer.json");
  std::vector<std::string> texts;
  for (const auto& s : testing::expected()["strings"]) texts.push_back(s.get<std::string>());
  texts.push_back(corpus_text().substr(0, 20000));
  std::mt19937 rng(11);
  for (int i = 0; i < 50; ++i) texts.push_back(testing::random_utf8(rng, 40));
  dir.write("texts.json", nlohmann::json(texts).dump());
  const std::string script =
      "import json, sys\n"
      "from tokenizers import Tokenizer\n"
      "d = sys.argv[1]\n"
      "t = Tokenizer.from_file(d + '/tokenizer.json')\n"
      "texts = json.load(open(d + '/texts.json', encoding='utf-8'))\n"
      "out = {}\n"
      "for mode, flag in (('as_text', True), ('recognize', False)):\n"
      "    t.encode_special_tokens = flag\n"
      "    out[mode] = [t.encode(s, add_special_tokens=False).ids for s in texts]\n"
      "out['decoded'] = [t.decode(ids, skip_special_tokens=False) for ids in out['as_text']]\n"
      "json.dump(out, open(d + '/ids.json', 'w'))\n";
  dir.write("encode.py", script);
  const std::string command = "RAYON_NUM_THREADS=1 " + python + " " + dir.path() + "/encode.py " +
                              dir.path() + " 2>" + dir.path() + "/stderr.txt";
  ASSERT_EQ(std::system(command.c_str()), 0) << testing::read_file(dir.path() + "/stderr.txt");
  const auto got = nlohmann::json::parse(testing::read_file(dir.path() + "/ids.json"));
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto shown = nlohmann::json(texts[i]).dump().substr(0, 80);
    EXPECT_EQ(tok->encode(texts[i], SpecialTokens::kAsText),
              got["as_text"][i].get<std::vector<TokenId>>()) << shown;
    EXPECT_EQ(tok->encode(texts[i], SpecialTokens::kRecognize),
              got["recognize"][i].get<std::vector<TokenId>>()) << shown;
    EXPECT_EQ(got["decoded"][i].get<std::string>(), texts[i]) << shown;
  }
}

}  // namespace
}  // namespace albion::tokenizers
