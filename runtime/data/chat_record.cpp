// File: runtime/data/chat_record.cpp
#include "runtime/data/chat_record.h"

#include <nlohmann/json.hpp>

#include "runtime/base/check.h"

namespace albion::data {
namespace {

using nlohmann::json;

bool has_string(const json& object, const char* field) {
  const auto it = object.find(field);
  return it != object.end() && it->is_string();
}

}  // namespace

std::vector<tokenizers::ChatMessage> parse_chat_record(std::string_view line) {
  json record;
  try {
    record = json::parse(line);
  } catch (const json::exception&) {
    throw UsageError("malformed JSON");  // no content in the message: it may be private
  }
  ALBION_CHECK_AS(UsageError, record.is_object(), "record is not a JSON object");
  std::vector<tokenizers::ChatMessage> conversation;
  if (const auto messages = record.find("messages"); messages != record.end()) {
    ALBION_CHECK_AS(UsageError, messages->is_array() && !messages->empty(),
                    "\"messages\" must be a non-empty array");
    for (const json& message : *messages) {
      ALBION_CHECK_AS(UsageError, message.is_object() && has_string(message, "role") &&
                                      has_string(message, "content"),
                      "each message needs string fields \"role\" and \"content\"");
      conversation.push_back({message["role"].get<std::string>(), message["content"].get<std::string>()});
    }
    return conversation;
  }
  ALBION_CHECK_AS(UsageError, has_string(record, "prompt") && has_string(record, "completion"),
                  "record has neither \"messages\" nor string \"prompt\" and \"completion\"");
  conversation.push_back({"user", record["prompt"].get<std::string>()});
  conversation.push_back({"assistant", record["completion"].get<std::string>()});
  return conversation;
}

std::optional<tokenizers::ChatTemplate> parse_record_template(std::string_view name) {
  if (name == "none") return std::nullopt;
  try {
    return tokenizers::parse_chat_template(name);
  } catch (const UsageError&) {
    throw UsageError(
        str_cat("unknown chat template '", name, "' (expected llama3, llama3.1, chatml, qwen2.5 or none)"));
  }
}

void require_template_tokens(const tokenizers::Tokenizer& tokenizer,
                             std::optional<tokenizers::ChatTemplate> chat_template) {
  // Rendering an empty conversation looks up every token the form needs.
  if (chat_template) {
    tokenizers::render_chat(tokenizer, *chat_template, {});
  } else {
    tokenizers::render_plain_prompt_completion(tokenizer, "", "");
  }
}

tokenizers::MaskedTokens render_chat_record(const tokenizers::Tokenizer& tokenizer,
                                            std::optional<tokenizers::ChatTemplate> chat_template,
                                            std::string_view line) {
  const std::vector<tokenizers::ChatMessage> conversation = parse_chat_record(line);
  if (chat_template) return tokenizers::render_chat(tokenizer, *chat_template, conversation);
  ALBION_CHECK_AS(UsageError, conversation.size() == 2 && conversation[0].role == "user" &&
                                  conversation[1].role == "assistant",
                  "without a chat template (--chat-template none) a record must be a prompt and a "
                  "completion: one user turn, then one assistant turn");
  return tokenizers::render_plain_prompt_completion(tokenizer, conversation[0].content,
                                                    conversation[1].content);
}

}  // namespace albion::data
