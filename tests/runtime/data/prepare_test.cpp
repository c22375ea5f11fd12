// File: tests/runtime/data/prepare_test.cpp
// `prepare_dataset` with the byte tokenizer: counts, determinism across thread counts, the split,
// atomic output, and bad input (one UsageError naming file and line, nothing left behind).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/base/error.h"
#include "runtime/data/dataset_manifest.h"
#include "runtime/data/prepare.h"
#include "runtime/data/token_shard.h"
#include "runtime/tokenizers/tokenizer.h"
#include "tests/support/temp_dir.h"

namespace albion::data {
namespace {

namespace fs = std::filesystem;
using testing_support::read_bytes;
using testing_support::TempDir;

PrepareOptions byte_options(const TempDir& dir, std::vector<std::string> inputs) {
  PrepareOptions o;
  o.inputs = std::move(inputs);
  o.output = dir / "out";
  o.tokenizer_spec = "byte";
  return o;
}

std::string paragraphs(int count) {
  std::string text;
  for (int i = 0; i < count; ++i) text += "Paragraph " + std::to_string(i) + " of the corpus.\n\n";
  return text;
}

TEST(Prepare, CountsTokensAndDocuments) {
  TempDir dir;
  PrepareOptions o = byte_options(dir, {dir.write("a.txt", "hello"), dir.write("b.txt", "world!")});
  PrepareSummary summary = prepare_dataset(o);
  // Byte tokenizer: one token per byte plus <|endoftext|> per document.
  EXPECT_EQ(summary.train_tokens, 5u + 1 + 6 + 1);
  EXPECT_EQ(summary.train_documents, 2u);
  EXPECT_EQ(summary.val_tokens, 0u);
  DatasetManifest m = read_manifest(o.output);
  EXPECT_EQ(m.vocab_size, 257u);
  EXPECT_EQ(m.token_width, TokenWidth::kUint16);
  ASSERT_EQ(m.sources.size(), 2u);
  EXPECT_EQ(m.sources[0].sha256.size(), 64u);
  EXPECT_EQ(m.splits.at("train").shards.size(), 1u);
  EXPECT_FALSE(fs::exists(o.output + ".partial"));
}

TEST(Prepare, IdenticalOutputForAnyThreadCountAndSplitByDocument) {
  TempDir dir;
  std::string corpus = dir.write("corpus.txt", paragraphs(2000));
  std::string shards[2];
  for (int threads : {1, 3}) {
    PrepareOptions o = byte_options(dir, {corpus});
    o.output = dir / ("out" + std::to_string(threads));
    o.threads = threads;
    o.text_document_bytes = 1000;
    o.val_fraction = 0.2;
    o.shard_tokens = 20000;
    PrepareSummary s = prepare_dataset(o);
    EXPECT_GT(s.val_documents, 5u);
    EXPECT_GT(s.train_documents, 4 * s.val_documents / 2);
    EXPECT_GT(s.shards, 2u);
    shards[threads == 1 ? 0 : 1] = read_bytes(o.output + "/train-00001.h5");
  }
  EXPECT_EQ(shards[0], shards[1]);
}

TEST(Prepare, RefusesExistingOutputUnlessOverwriting) {
  TempDir dir;
  PrepareOptions o = byte_options(dir, {dir.write("a.txt", "some text")});
  prepare_dataset(o);
  EXPECT_THROW(prepare_dataset(o), UsageError);
  o.overwrite = true;
  o.inputs = {dir.write("b.txt", "other text, longer")};
  EXPECT_EQ(prepare_dataset(o).train_tokens, 19u);
  EXPECT_EQ(read_manifest(o.output).sources.at(0).path, o.inputs[0]);
}

// --overwrite replaces the output whole: an output that holds the inputs is refused, inputs kept.
TEST(Prepare, RefusesToOverwriteTheDirectoryHoldingItsInputs) {
  TempDir dir;
  PrepareOptions o = byte_options(dir, {dir.write("corpus/sub/a.txt", "some text")});
  o.overwrite = true;
  for (const std::string& output : {dir / "corpus", dir / "corpus/sub", dir / "corpus/sub/../sub"}) {
    o.output = output;
    EXPECT_THROW(prepare_dataset(o), UsageError) << output;
    EXPECT_EQ(read_bytes(o.inputs[0]), "some text");
  }
  o.output = dir / "corpus-out";
  EXPECT_EQ(prepare_dataset(o).train_tokens, 10u);
}

TEST(Prepare, RemovesLeftoversOfAnInterruptedRun) {
  TempDir dir;
  PrepareOptions o = byte_options(dir, {dir.write("a.txt", "text")});
  dir.write("out.partial/.albion-staging", "");  // the marker of a staging directory, unlocked
  dir.write("out.partial/train-00000.h5", "half-written");
  prepare_dataset(o);
  EXPECT_FALSE(fs::exists(o.output + ".partial"));
  EXPECT_TRUE(fs::exists(o.output + "/dataset.json"));
}

TEST(Prepare, JsonlTakesTheTextField) {
  TempDir dir;
  PrepareOptions o = byte_options(dir, {dir.write("d.jsonl", "{\"text\": \"ab\"}\n\n{\"text\": \"cde\", \"id\": 3}\n")});
  o.format = InputFormat::kJsonl;
  PrepareSummary s = prepare_dataset(o);
  EXPECT_EQ(s.train_documents, 2u);
  EXPECT_EQ(s.train_tokens, 2u + 1 + 3 + 1);
}

std::string usage_error(const PrepareOptions& o) {
  try {
    prepare_dataset(o);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Prepare, MalformedJsonlNamesFileAndLineAndLeavesNothing) {
  TempDir dir;
  std::string file = dir.write("d.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"private data\"\n{\"text\": 5}\n");
  PrepareOptions o = byte_options(dir, {file});
  o.format = InputFormat::kJsonl;
  std::string message = usage_error(o);
  EXPECT_NE(message.find(file + ":2: malformed JSON"), std::string::npos) << message;
  EXPECT_EQ(message.find("private data"), std::string::npos) << "record content leaked into the error";
  EXPECT_FALSE(fs::exists(o.output));
  EXPECT_FALSE(fs::exists(o.output + ".partial"));

  o.skip_bad_records = true;
  PrepareSummary s = prepare_dataset(o);
  EXPECT_EQ(s.skipped_records, 2u);  // line 2 (bad JSON) and line 3 (text not a string)
  EXPECT_EQ(s.train_documents, 1u);
}

TEST(Prepare, InvalidUtf8NamesTheFile) {
  TempDir dir;
  std::string file = dir.write("bad.txt", std::string("valid then \xff\xfe bytes"));
  std::string message = usage_error(byte_options(dir, {file}));
  EXPECT_NE(message.find(file), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(Prepare, EmptyOrMissingInputIsAUsageError) {
  TempDir dir;
  EXPECT_NE(usage_error(byte_options(dir, {dir.write("empty.txt", "")})), "");
  EXPECT_NE(usage_error(byte_options(dir, {dir / "missing.txt"})).find("no such file"), std::string::npos);
  EXPECT_NE(usage_error(byte_options(dir, {})), "");
  PrepareOptions bad_fraction = byte_options(dir, {dir.write("a.txt", "x")});
  bad_fraction.val_fraction = 1.5;
  EXPECT_NE(usage_error(bad_fraction).find("--val-fraction"), std::string::npos);
}

}  // namespace
}  // namespace albion::data

namespace albion::data {
namespace {

// The tokenizer fixture trained by tests/runtime/tokenizers/fixtures/make_fixtures.py has the
// ChatML special tokens.
const std::string kChatTokenizer =
    "hf:" + std::string(ALBION_SOURCE_DIR) + "/tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json";

// The masked tokens of the first shard of `o`'s train split, decoded.
std::string trained_text(const PrepareOptions& o) {
  DatasetManifest m = read_manifest(o.output);
  EXPECT_TRUE(m.has_loss_mask);
  TokenShard shard(o.output + "/" + m.splits.at("train").shards.at(0).file, m.token_width,
                   m.vocab_size, m.splits.at("train").tokens);
  std::vector<std::int64_t> tokens(shard.token_count());
  std::vector<std::uint8_t> mask(shard.token_count());
  shard.copy_tokens(0, tokens.size(), tokens.data());
  shard.copy_loss_mask(0, mask.size(), mask.data());
  std::vector<tokenizers::TokenId> trained;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (mask[i]) trained.push_back(static_cast<tokenizers::TokenId>(tokens[i]));
  }
  return tokenizers::load_tokenizer(o.tokenizer_spec)->decode(trained);
}

TEST(PrepareChat, MasksAreOneOnlyOnAssistantTokens) {
  TempDir dir;
  PrepareOptions o;
  o.inputs = {dir.write("chat.jsonl",
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"What is the capital?\"},"
                        " {\"role\": \"assistant\", \"content\": \"London.\"}]}\n"
                        "{\"prompt\": \"Say hi\", \"completion\": \"Hi there\"}\n")};
  o.output = dir / "out";
  o.tokenizer_spec = kChatTokenizer;
  o.format = InputFormat::kChat;
  prepare_dataset(o);
  // Exactly the assistant replies and their end-of-turn tokens are trained on.
  EXPECT_EQ(trained_text(o), "London.<|im_end|>Hi there<|im_end|>");
  EXPECT_EQ(read_manifest(o.output).chat_template, "chatml");  // the default
}

// chat.jsonl holding `lines`, prepared with the byte tokenizer (end-of-text only, no chat tokens).
PrepareOptions byte_chat_options(const TempDir& dir, const std::string& chat_template, const std::string& lines) {
  PrepareOptions o = byte_options(dir, {dir.write("chat.jsonl", lines)});
  o.format = InputFormat::kChat;
  o.chat_template = chat_template;
  return o;
}

// A base model has no chat template: each record trains on its completion and end-of-text.
TEST(PrepareChat, WithoutATemplateTheCompletionAndEndOfTextAreTrainedOn) {
  TempDir dir;
  PrepareOptions o = byte_chat_options(dir, "none",
                                       "{\"prompt\": \"Say hi\", \"completion\": \" Hi there\"}\n"
                                       "{\"messages\": [{\"role\": \"user\", \"content\": \"Capital?\"},"
                                       " {\"role\": \"assistant\", \"content\": \" London.\"}]}\n");
  prepare_dataset(o);
  EXPECT_EQ(trained_text(o), " Hi there<|endoftext|> London.<|endoftext|>");
  EXPECT_EQ(read_manifest(o.output).chat_template, "none");
}

// Without a template a conversation of other turns has no plain form: a bad record, located.
TEST(PrepareChat, WithoutATemplateOnlyPromptAndCompletionAreAccepted) {
  TempDir dir;
  PrepareOptions o = byte_chat_options(dir, "none",
                                       "{\"prompt\": \"a\", \"completion\": \"b\"}\n"
                                       "{\"messages\": [{\"role\": \"system\", \"content\": \"be brief\"},"
                                       " {\"role\": \"user\", \"content\": \"a\"},"
                                       " {\"role\": \"assistant\", \"content\": \"b\"}]}\n");
  const std::string message = usage_error(o);
  EXPECT_NE(message.find("chat.jsonl:2: without a chat template"), std::string::npos) << message;
  o.chat_template = "alpaca";
  EXPECT_NE(usage_error(o).find("unknown chat template 'alpaca' (expected llama3, llama3.1, chatml, qwen2.5 or none)"),
            std::string::npos);
}

// A tokenizer without the template's special tokens is a configuration error, named once, even
// with --skip-bad-records (which would otherwise skip every record and write an empty dataset).
TEST(PrepareChat, ATokenizerWithoutTheTemplatesTokensIsRefusedBeforeAnyRecord) {
  TempDir dir;
  PrepareOptions o = byte_chat_options(dir, "chatml", "{\"prompt\": \"a\", \"completion\": \"b\"}\n");
  o.skip_bad_records = true;
  const std::string message = usage_error(o);
  EXPECT_NE(message.find("has no special token <|im_start|>"), std::string::npos) << message;
  EXPECT_EQ(message.find("chat.jsonl"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(o.output));
}

// The file and line are named; the record's value is not echoed (the data may be private).
TEST(PrepareChat, UnknownRoleNamesFileAndLine) {
  TempDir dir;
  PrepareOptions o;
  o.inputs = {dir.write("chat.jsonl", "{\"prompt\": \"a\", \"completion\": \"b\"}\n"
                                      "{\"messages\": [{\"role\": \"wizard\", \"content\": \"x\"}]}\n")};
  o.output = dir / "out";
  o.tokenizer_spec = kChatTokenizer;
  o.format = InputFormat::kChat;
  std::string message = usage_error(o);
  EXPECT_NE(message.find("chat.jsonl:2:"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown role"), std::string::npos) << message;
  EXPECT_EQ(message.find("wizard"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(o.output));
}

}  // namespace
}  // namespace albion::data
