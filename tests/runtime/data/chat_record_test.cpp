// File: tests/runtime/data/chat_record_test.cpp
// Chat dataset records: both forms parse to the same conversation, the prompt/completion form
// renders as the two-turn conversation, a tokenizer without the template's tokens is named, and a
// malformed record is described without quoting it (chat data may be private).
#include <gtest/gtest.h>

#include "runtime/base/error.h"
#include "runtime/data/chat_record.h"

namespace albion::data {
namespace {

using tokenizers::ChatMessage;
using tokenizers::ChatTemplate;

// Trained by tests/runtime/tokenizers/fixtures/make_fixtures.py, with the ChatML special tokens.
const std::string kChatTokenizer =
    "hf:" + std::string(ALBION_SOURCE_DIR) + "/tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json";

std::string usage_error(std::string_view line) {
  try {
    parse_chat_record(line);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(ChatRecord, BothFormsParseToTheConversation) {
  const std::vector<ChatMessage> two_turns = {{"user", "Who wrote Emma?"}, {"assistant", " Jane Austen."}};
  EXPECT_EQ(parse_chat_record(R"({"prompt": "Who wrote Emma?", "completion": " Jane Austen."})"), two_turns);
  EXPECT_EQ(parse_chat_record(R"({"messages": [{"role": "user", "content": "Who wrote Emma?"},
                                               {"role": "assistant", "content": " Jane Austen.", "x": 1}]})"),
            two_turns);
}

TEST(ChatRecord, PromptCompletionRendersAsTheTwoTurnConversation) {
  const auto tokenizer = tokenizers::load_tokenizer(kChatTokenizer);
  const std::vector<ChatMessage> two_turns = {{"user", "Who wrote Emma?"}, {"assistant", " Jane Austen."}};
  const tokenizers::MaskedTokens rendered = render_chat_record(
      *tokenizer, ChatTemplate::kChatML, R"({"prompt": "Who wrote Emma?", "completion": " Jane Austen."})");
  const tokenizers::MaskedTokens want = tokenizers::render_chat(*tokenizer, ChatTemplate::kChatML, two_turns);
  EXPECT_EQ(rendered.ids, want.ids);
  EXPECT_EQ(rendered.loss_mask, want.loss_mask);
}

TEST(ChatRecord, TemplatesAndTheirTokensAreChecked) {
  EXPECT_EQ(parse_record_template("none"), std::nullopt);
  EXPECT_EQ(parse_record_template("llama3"), ChatTemplate::kLlama3);
  EXPECT_EQ(parse_record_template("llama3.1"), ChatTemplate::kLlama31);
  EXPECT_EQ(parse_record_template("qwen2.5"), ChatTemplate::kQwen25);
  EXPECT_THROW(parse_record_template("Llama3"), UsageError);
  const auto chatml = tokenizers::load_tokenizer(kChatTokenizer);
  EXPECT_NO_THROW(require_template_tokens(*chatml, ChatTemplate::kChatML));
  EXPECT_THROW(require_template_tokens(*chatml, ChatTemplate::kLlama3), UsageError);
  const auto byte = tokenizers::load_tokenizer("byte");  // end-of-text only
  EXPECT_NO_THROW(require_template_tokens(*byte, std::nullopt));
  EXPECT_THROW(require_template_tokens(*byte, ChatTemplate::kChatML), UsageError);
}

// Each error says what is wrong; none quotes the record ("Darcy" stands for private content).
TEST(ChatRecord, MalformedRecordsAreDescribedNotQuoted) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"prompt": "Darcy")", "malformed JSON"},
      {R"(["Darcy"])", "not a JSON object"},
      {R"({"messages": []})", "non-empty array"},
      {R"({"messages": "Darcy"})", "non-empty array"},
      {R"({"messages": [{"role": "user", "content": 7, "Darcy": 1}]})", "string fields \"role\" and \"content\""},
      {R"({"messages": ["Darcy"]})", "string fields \"role\" and \"content\""},
      {R"({"prompt": "Darcy"})", "neither \"messages\" nor string \"prompt\" and \"completion\""},
      {R"({"prompt": "Darcy", "completion": null})", "neither"},
      {R"({"text": "Darcy"})", "neither"},
  };
  for (const auto& [line, want] : cases) {
    const std::string message = usage_error(line);
    EXPECT_NE(message.find(want), std::string::npos) << line << " -> " << message;
    EXPECT_EQ(message.find("Darcy"), std::string::npos) << line << " -> " << message;
  }
}

}  // namespace
}  // namespace albion::data
