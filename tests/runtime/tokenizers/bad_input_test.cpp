// File: tests/runtime/tokenizers/bad_input_test.cpp
// Bad specs, malformed files and invalid UTF-8 give a UsageError (exit code 2) whose one-line
// message names the file (and the line or JSON place) or the byte offset.
#include <gtest/gtest.h>

#include "runtime/base/error.h"
#include "runtime/tokenizers/tokenizer.h"
#include "tests/runtime/tokenizers/fixtures.h"

namespace albion::tokenizers {
namespace {

using testing::fixture;
using testing::read_file;
using testing::ScratchDir;

// Runs f, expects a UsageError, returns its message.
template <typename F>
std::string usage_error(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected UsageError, got " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected UsageError, nothing thrown";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(BadInput, UnknownOrEmptySpec) {
  EXPECT_CONTAINS(usage_error([] { load_tokenizer("tiktoken:foo"); }), "tiktoken:foo");
  EXPECT_CONTAINS(usage_error([] { load_tokenizer("hf:"); }), "names no file");
  EXPECT_CONTAINS(usage_error([] { load_tokenizer(""); }), "unknown tokenizer spec");
}

TEST(BadInput, MissingFiles) {
  EXPECT_CONTAINS(usage_error([] { load_tokenizer("hf:/nonexistent/tokenizer.json"); }),
                  "/nonexistent/tokenizer.json");
  EXPECT_CONTAINS(usage_error([] { load_tokenizer("gpt2:/nonexistent"); }),
                  "/nonexistent/vocab.json");
  EXPECT_CONTAINS(usage_error([] { load_tokenizer("sentencepiece:/nonexistent/x.model"); }),
                  "/nonexistent/x.model");
  ScratchDir dir;
  dir.write("vocab.json", read_file(fixture("gpt2/vocab.json")));
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("gpt2:" + dir.path()); }),
                  dir.path() + "/merges.txt");
}

TEST(BadInput, BadJsonNamesFileAndLine) {
  ScratchDir dir;
  const auto path = dir.write("tokenizer.json", "{\n  \"model\": {\n    \"vocab\": [1, 2,\n}\n");
  const auto message = usage_error([&] { load_tokenizer("hf:" + path); });
  EXPECT_CONTAINS(message, path + ":4:");
  EXPECT_CONTAINS(message, "not valid JSON");
  // Well-formed, but beyond a double: nlohmann throws out_of_range, not parse_error (found by
  // fuzz/tokenizer_json_fuzzer.cpp; it escaped as an internal error).
  const auto huge = dir.write("huge.json", "{\"model\": 7e1111}");
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + huge); }), huge + ": not valid JSON");
}

TEST(BadInput, MalformedTokenizerJson) {
  ScratchDir dir;
  auto doc = nlohmann::json::parse(read_file(fixture("gpt2/tokenizer.json")));
  auto with = [&](const std::string& name, auto edit) {
    auto copy = doc;
    edit(copy);
    return dir.write(name, copy.dump());
  };
  const auto no_merges = with("no_merges.json", [](auto& j) { j["model"].erase("merges"); });
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + no_merges); }),
                  no_merges + ": model.merges is missing");
  const auto unknown = with("unknown.json", [](auto& j) {
    j["model"]["merges"][5] = nlohmann::json::array({"Ġthe", "zzzq"});
  });
  const auto m = usage_error([&] { load_tokenizer("hf:" + unknown); });
  EXPECT_CONTAINS(m, unknown + ": model.merges[5]");
  EXPECT_CONTAINS(m, "'zzzq' is not in the vocabulary");
  const auto bad_line = with("bad_line.json", [](auto& j) { j["model"]["merges"][2] = "a b c"; });
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + bad_line); }),
                  bad_line + ": model.merges[2]");
  const auto wordpiece = with("wp.json", [](auto& j) { j["model"]["type"] = "WordPiece"; });
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + wordpiece); }), "WordPiece");
  const auto no_byte = with("no_byte.json", [](auto& j) { j["model"]["vocab"].erase("Ġ"); });
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + no_byte); }), no_byte);
  const auto bad_regex = with("regex.json", [](auto& j) {
    j["pre_tokenizer"] = {{"type", "Sequence"},
                          {"pretokenizers",
                           {{{"type", "Split"},
                             {"pattern", {{"Regex", "(unclosed"}}},
                             {"behavior", "Isolated"},
                             {"invert", false}},
                            {{"type", "ByteLevel"}, {"use_regex", false}}}}};
  });
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + bad_regex); }), "(unclosed");
  const auto nfkc = with("nfkc.json", [](auto& j) { j["normalizer"] = {{"type", "NFKC"}}; });
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + nfkc); }), "NFKC");
  const auto odd_type = with("odd_type.json", [](auto& j) { j["model"]["type"] = 5; });
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + odd_type); }), odd_type);
  const auto not_object = dir.write("array.json", "[1, 2, 3]");
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + not_object); }), not_object);
  const auto dup = with("dup.json", [](auto& j) { j["model"]["vocab"]["Ġthe"] = 5; });
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("hf:" + dup); }), "id 5 is used by both");
}

TEST(BadInput, MalformedMergesTxtNamesLine) {
  ScratchDir dir;
  dir.write("vocab.json", read_file(fixture("gpt2/vocab.json")));
  std::string merges = read_file(fixture("gpt2/merges.txt"));
  const std::size_t third_line = merges.find('\n', merges.find('\n') + 1) + 1;
  merges.insert(third_line, "Ġthe qqqqq\n");
  const auto path = dir.write("merges.txt", merges);
  const auto message = usage_error([&] { load_tokenizer("gpt2:" + dir.path()); });
  EXPECT_CONTAINS(message, path + ":3:");
  EXPECT_CONTAINS(message, "qqqqq");
  dir.write("merges.txt", "#version: 0.2\n");
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("gpt2:" + dir.path()); }), "no merges");
}

TEST(BadInput, TruncatedSentencePieceModel) {
  ScratchDir dir;
  const std::string model = read_file(fixture("sentencepiece/spm.model"));
  const auto path = dir.write("truncated.model", model.substr(0, model.size() / 2));
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("sentencepiece:" + path); }), path);
  const auto garbage = dir.write("garbage.model", "this is not a protobuf");
  EXPECT_CONTAINS(usage_error([&] { load_tokenizer("sentencepiece:" + garbage); }), garbage);
}

TEST(BadInput, InvalidUtf8NamesByteOffset) {
  for (const std::string& spec :
       {std::string("byte"), "hf:" + fixture("gpt2/tokenizer.json"), "gpt2:" + fixture("gpt2"),
        "hf:" + fixture("llama3/tokenizer.json"),
        "sentencepiece:" + fixture("sentencepiece/spm.model")}) {
    const auto tok = load_tokenizer(spec);
    for (auto mode : {SpecialTokens::kAsText, SpecialTokens::kRecognize}) {
      EXPECT_CONTAINS(usage_error([&] { tok->encode("abc\xff", mode); }), "byte offset 3");
      EXPECT_CONTAINS(usage_error([&] { tok->encode("0123456789\xc3", mode); }), "byte offset 10");
      EXPECT_CONTAINS(usage_error([&] { tok->encode("ab\xed\xa0\x80", mode); }),  // surrogate
                      "byte offset 2");
      EXPECT_CONTAINS(usage_error([&] { tok->encode("\xc0\xafxyz", mode); }),  // overlong
                      "byte offset 0");
      EXPECT_CONTAINS(usage_error([&] { tok->encode("\xf4\x90\x80\x80", mode); }),  // > U+10FFFF
                      "byte offset 0");
    }
    EXPECT_THROW(tok->decode(std::vector<TokenId>{static_cast<TokenId>(tok->vocab_size())}),
                 UsageError);
  }
}

TEST(BadInput, HugeWhitespaceRunStillEncodes) {
  // Pathological input for the `\s+(?!\S)` alternatives: must neither crash nor hit PCRE2 limits.
  const auto tok = load_tokenizer("hf:" + fixture("llama3/tokenizer.json"));
  const std::string text = std::string(1 << 20, ' ') + "x" + std::string(1 << 18, '\n');
  EXPECT_EQ(tok->decode(tok->encode(text)), text);
}

}  // namespace
}  // namespace albion::tokenizers
