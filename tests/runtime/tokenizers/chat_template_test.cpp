// File: tests/runtime/tokenizers/chat_template_test.cpp
// Chat templates: ids equal Hugging Face's encoding of the rendered conversation (recorded in
// fixtures/expected.json), the loss mask is 1 exactly on assistant content and its end-of-turn
// token, forged special-token strings in content stay text, and bad roles, templates and
// tokenizers without the template's tokens are UsageErrors naming what is wrong; a generation
// prompt ends with the assistant's header; the templates' Jinja spelling, which `ckpt export`
// writes, renders in transformers as Albion renders.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>

#include "runtime/base/error.h"
#include "runtime/tokenizers/chat_template.h"
#include "runtime/tokenizers/hf_tokenizer_json.h"
#include "tests/runtime/tokenizers/fixtures.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_bpe.h"

namespace albion::tokenizers {
namespace {

using testing::expected;
using testing::fixture;

std::vector<ChatMessage> fixture_messages() {
  std::vector<ChatMessage> out;
  for (const auto& m : expected()["chat"]["messages"]) {
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

// The text of the masked tokens, decoded run by run.
std::vector<std::string> trained_runs(const Tokenizer& tok, const MaskedTokens& t) {
  std::vector<std::string> runs;
  std::vector<TokenId> run;
  for (std::size_t i = 0; i <= t.ids.size(); ++i) {
    if (i < t.ids.size() && t.loss_mask[i]) {
      run.push_back(t.ids[i]);
    } else if (!run.empty()) {
      runs.push_back(tok.decode(run));
      run.clear();
    }
  }
  return runs;
}

struct TemplateCase {
  const char* name;
  std::string spec;
  ChatTemplate chat_template;
  std::string end_of_turn;
};

class Chat : public ::testing::TestWithParam<TemplateCase> {};

TEST_P(Chat, MatchesReferenceIdsAndMasksOnlyAssistantTurns) {
  const auto tok = load_tokenizer(GetParam().spec);
  const auto messages = fixture_messages();
  const MaskedTokens t = render_chat(*tok, GetParam().chat_template, messages);
  ASSERT_EQ(t.ids.size(), t.loss_mask.size());
  EXPECT_EQ(t.ids, expected()["chat"][GetParam().name].get<std::vector<TokenId>>());
  EXPECT_EQ(trained_runs(*tok, t), expected()["chat"]["trained"][GetParam().name].get<std::vector<std::string>>());
}

// The assistant's header after the conversation, as the templates' add_generation_prompt writes it.
TEST_P(Chat, GenerationPromptEndsWithTheAssistantsHeader) {
  const auto tok = load_tokenizer(GetParam().spec);
  const auto messages = fixture_messages();
  const GenerationPrompt prompt = render_generation_prompt(*tok, GetParam().chat_template, messages);
  std::vector<TokenId> want = render_chat(*tok, GetParam().chat_template, messages).ids;
  const bool chatml =
      GetParam().chat_template == ChatTemplate::kChatML || GetParam().chat_template == ChatTemplate::kQwen25;
  const std::string header = chatml ? "<|im_start|>assistant\n" : "<|start_header_id|>assistant<|end_header_id|>\n\n";
  const std::vector<TokenId> header_ids = tok->encode(header, SpecialTokens::kRecognize);
  want.insert(want.end(), header_ids.begin(), header_ids.end());
  EXPECT_EQ(prompt.ids, want);
  EXPECT_EQ(tok->decode(std::vector<TokenId>{prompt.end_of_turn}), GetParam().end_of_turn);
}

// The message is located, but the record's value (possibly private data) is not echoed.
TEST_P(Chat, UnknownRoleIsLocatedNotEchoed) {
  const auto tok = load_tokenizer(GetParam().spec);
  const ChatMessage messages[] = {{"user", "hi"}, {"Mr Darcy's diary", "hello"}};
  try {
    render_chat(*tok, GetParam().chat_template, messages);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("message 1: unknown role (a 16-byte value"), std::string::npos) << what;
    EXPECT_EQ(what.find("Darcy"), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Templates, Chat,
    ::testing::Values(TemplateCase{"llama3", "hf:" + fixture("llama3/tokenizer.json"),
                                   ChatTemplate::kLlama3, "<|eot_id|>"},
                      TemplateCase{"llama3.1", "hf:" + fixture("llama3/tokenizer.json"),
                                   ChatTemplate::kLlama31, "<|eot_id|>"},
                      TemplateCase{"chatml", "hf:" + fixture("gpt2/tokenizer.json"),
                                   ChatTemplate::kChatML, "<|im_end|>"},
                      TemplateCase{"qwen2.5", "hf:" + fixture("gpt2/tokenizer.json"),
                                   ChatTemplate::kQwen25, "<|im_end|>"}),
    [](const auto& info) {
      std::string name = info.param.name;
      std::replace(name.begin(), name.end(), '.', '_');
      return name;
    });

// The Jinja `ckpt export` writes into tokenizer_config.json, applied by transformers'
// apply_chat_template and encoded: the ids Albion renders, with and without a system message and a
// generation prompt. (Without the forged special-token strings: transformers reads those as
// control tokens, Albion as text.)
TEST_P(Chat, TransformersRendersTheExportedJinjaAsAlbionDoes) {
  const std::string python = ALBION_PYTHON;
  if (!testing_support::python_imports(python, "transformers")) {
    GTEST_SKIP() << "no " << python << " with the `transformers` package";
  }
  std::vector<ChatMessage> with_system = fixture_messages();
  with_system[3].content = "  And Anne? ";
  const std::vector<ChatMessage> without_system(with_system.begin() + 1, with_system.end());
  testing_support::TempDir dir;
  std::filesystem::copy(GetParam().spec.substr(3), dir / "tokenizer.json");
  const nlohmann::json config = {{"chat_template", hugging_face_chat_template(GetParam().chat_template)},
                                 {"eos_token", end_of_turn_token(GetParam().chat_template)},
                                 {"tokenizer_class", "PreTrainedTokenizerFast"}};
  std::ofstream(dir / "tokenizer_config.json") << config.dump();
  nlohmann::json conversations = nlohmann::json::array();
  for (const auto& messages : {with_system, without_system}) {
    nlohmann::json one = nlohmann::json::array();
    for (const ChatMessage& m : messages) one.push_back({{"role", m.role}, {"content", m.content}});
    conversations.push_back(one);
  }
  std::ofstream(dir / "conversations.json") << conversations.dump();
  std::ofstream(dir / "render.py") << R"PY(
import json, sys, transformers
tok = transformers.AutoTokenizer.from_pretrained(sys.argv[1])
out = []
for messages in json.load(open(sys.argv[1] + "/conversations.json")):
    for prompt in (False, True):
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
        out.append(tok.encode(text, add_special_tokens=False))
print("ids", json.dumps(out))
)PY";
  const auto [status, output] = testing_support::run_command(python + " " + (dir / "render.py") + " " + dir.path());
  ASSERT_EQ(status, 0) << output;
  const std::size_t at = output.rfind("ids ");
  ASSERT_NE(at, std::string::npos) << output;
  const auto transformers_ids = nlohmann::json::parse(output.substr(at + 4)).get<std::vector<std::vector<TokenId>>>();
  const auto tok = load_tokenizer(GetParam().spec);
  std::vector<std::vector<TokenId>> albion_ids;
  for (const auto& messages : {with_system, without_system}) {
    albion_ids.push_back(render_chat(*tok, GetParam().chat_template, messages).ids);
    albion_ids.push_back(render_generation_prompt(*tok, GetParam().chat_template, messages).ids);
  }
  EXPECT_EQ(transformers_ids, albion_ids);
}

// Llama 3.1's template writes its system turn, the dated preamble, also when the conversation has
// no system message; and the preamble is never trained on.
TEST(ChatLlama31, TheSystemTurnIsThereWithoutASystemMessage) {
  const auto tok = load_tokenizer("hf:" + fixture("llama3/tokenizer.json"));
  const auto messages = fixture_messages();
  ASSERT_EQ(messages.front().role, "system");
  const std::span<const ChatMessage> without_system = std::span(messages).subspan(1);
  const MaskedTokens t = render_chat(*tok, ChatTemplate::kLlama31, without_system);
  EXPECT_EQ(t.ids, expected()["chat"]["llama3.1_no_system"].get<std::vector<TokenId>>());
  EXPECT_EQ(trained_runs(*tok, t), expected()["chat"]["trained"]["llama3.1"].get<std::vector<std::string>>());
  EXPECT_EQ(tok->decode(render_chat(*tok, ChatTemplate::kLlama31, {}).ids),
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
            "Today Date: 26 Jul 2024\n\n<|eot_id|>");
}

// With GPT-2's pre-tokenizer, "\n\n" alone is one piece (one token) but "\n\nHi" splits as "\n"
// "\n" "Hi": the template's own text encodes differently next to content. Only the tokens that
// hold content are trained on (Hugging Face's assistant mask), not the two "\n" before them.
TEST(ChatMask, ATokenMadeOnlyOfTemplateTextIsNotTrainedOn) {
  const testing_support::Merge merges[] = {{"\n", "\n"}, {"H", "i"}};
  const std::string_view specials[] = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                                       "<|eot_id|>"};
  const auto tok = parse_hf_tokenizer_json(
      testing_support::tiny_bpe_json(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
                                     merges, specials),
      "tiny");
  EXPECT_EQ(tok->encode("\n\n").size(), 1u);
  EXPECT_EQ(tok->encode("\n\nHi").size(), 3u);  // "\n" "\n" "Hi"
  const ChatMessage messages[] = {{"user", "Hello"}, {"assistant", "Hi"}};
  EXPECT_EQ(trained_runs(*tok, render_chat(*tok, ChatTemplate::kLlama3, messages)),
            std::vector<std::string>{"Hi<|eot_id|>"});
}

// Qwen 2.5's template opens a conversation without a system message with Qwen's own; one that
// brings its own is plain ChatML.
TEST(ChatQwen25, QwensSystemMessageWhenTheConversationHasNone) {
  const auto tok = load_tokenizer("hf:" + fixture("gpt2/tokenizer.json"));
  const auto messages = fixture_messages();
  ASSERT_EQ(messages.front().role, "system");
  EXPECT_EQ(render_chat(*tok, ChatTemplate::kQwen25, messages).ids,
            render_chat(*tok, ChatTemplate::kChatML, messages).ids);
  const MaskedTokens t = render_chat(*tok, ChatTemplate::kQwen25, std::span(messages).subspan(1));
  EXPECT_EQ(t.ids, expected()["chat"]["qwen2.5_no_system"].get<std::vector<TokenId>>());
  EXPECT_EQ(trained_runs(*tok, t), expected()["chat"]["trained"]["qwen2.5"].get<std::vector<std::string>>());
}

TEST(ChatErrors, MissingSpecialTokenIsNamed) {
  const auto gpt2 = load_tokenizer("hf:" + fixture("gpt2/tokenizer.json"));
  const ChatMessage messages[] = {{"user", "hi"}};
  try {
    render_chat(*gpt2, ChatTemplate::kLlama3, messages);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("no special token <|begin_of_text|>"), std::string::npos)
        << e.what();
  }
  const auto byte = load_tokenizer("byte");
  EXPECT_THROW(render_chat(*byte, ChatTemplate::kChatML, messages), UsageError);
  EXPECT_THROW(parse_chat_template("vicuna"), UsageError);
  EXPECT_EQ(parse_chat_template("chatml"), ChatTemplate::kChatML);
  EXPECT_EQ(parse_chat_template("llama3.1"), ChatTemplate::kLlama31);
  EXPECT_EQ(parse_chat_template("qwen2.5"), ChatTemplate::kQwen25);
  const ChatMessage bad_utf8[] = {{"user", "a\xff"}};
  EXPECT_THROW(render_chat(*gpt2, ChatTemplate::kChatML, bad_utf8), UsageError);
}

TEST(ChatErrors, PlainPromptCompletion) {
  const auto byte = load_tokenizer("byte");
  const MaskedTokens t = render_plain_prompt_completion(*byte, "ab", "c");
  EXPECT_EQ(t.ids, (std::vector<TokenId>{'a', 'b', 'c', 256}));
  EXPECT_EQ(t.loss_mask, (std::vector<std::uint8_t>{0, 0, 1, 1}));
}

}  // namespace
}  // namespace albion::tokenizers
