// File: runtime/tokenizers/chat_template.h
// Chat templates for supervised fine-tuning: a conversation becomes token ids plus a per-token
// loss mask that is 1 exactly on the assistant's content tokens and its end-of-turn token.
//   Llama 3: <|begin_of_text|> then per message
//            <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>
//            with CONTENT trimmed of leading and trailing whitespace, as Meta's template for the
//            Llama 3 Instruct models does (Jinja's trim: Python's str.strip(), Unicode whitespace)
//   Llama 3.1 (also 3.2 and 3.3): as Llama 3, but the conversation always opens with a system turn
//            whose content is a dated preamble then the first message's content when that message
//            is a system one (trimmed; otherwise nothing):
//            <|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n
//            Today Date: 26 Jul 2024\n\nSYSTEM<|eot_id|>
//            The date is the template's own default. Meta's 3.2 template puts today's date there
//            unless given one; a fixed date keeps a prepared dataset independent of the day.
//   ChatML:  per message <|im_start|>ROLE\nCONTENT<|im_end|>\n
//   Qwen 2.5: ChatML, opened by Qwen's default system message when the conversation has none:
//            <|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful
//            assistant.<|im_end|>\n
// Message content is encoded with SpecialTokens::kAsText, so a user cannot forge control tokens;
// the template's own special tokens are inserted by id. Tokens come out as if the rendered string
// were encoded whole (as Hugging Face's apply_chat_template + encode does): the text between two
// special tokens is encoded as one piece.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizers/tokenizer.h"

namespace albion::tokenizers {

enum class ChatTemplate { kLlama3, kLlama31, kChatML, kQwen25 };

// "llama3", "llama3.1", "chatml" or "qwen2.5"; anything else is a UsageError listing them.
ChatTemplate parse_chat_template(std::string_view name);

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
  bool operator==(const ChatMessage&) const = default;
};

struct MaskedTokens {
  std::vector<TokenId> ids;
  std::vector<std::uint8_t> loss_mask;  // same length as ids; 1 = train on this token
};

// Throws UsageError for an unknown role (naming it and the message index), for invalid UTF-8 in
// a message, or when the tokenizer lacks one of the template's special tokens (naming it).
MaskedTokens render_chat(const Tokenizer& tokenizer, ChatTemplate chat_template,
                         std::span<const ChatMessage> messages);

// What a chat model continues with its answer (transformers' add_generation_prompt): `messages`
// rendered as render_chat does, then the assistant's header; and the token that ends the answer
// (<|eot_id|>, <|im_end|>). Errors as render_chat.
struct GenerationPrompt {
  std::vector<TokenId> ids;
  TokenId end_of_turn;
};
GenerationPrompt render_generation_prompt(const Tokenizer& tokenizer, ChatTemplate chat_template,
                                          std::span<const ChatMessage> messages);

// The template as transformers' tokenizer_config.json spells it (its "chat_template", in Jinja):
// rendered by apply_chat_template and encoded, a conversation gives render_chat's ids, and with
// add_generation_prompt render_generation_prompt's. `ckpt export` writes it, so that transformers
// and what serves its files prompt a model fine-tuned on chat data as it was trained.
std::string hugging_face_chat_template(ChatTemplate chat_template);

// The text of the template's end-of-turn token: "<|eot_id|>" or "<|im_end|>".
std::string_view end_of_turn_token(ChatTemplate chat_template);

// The prompt/completion form without a template, for base models: prompt tokens (mask 0), then
// completion tokens and the end-of-text token (mask 1). UsageError if there is no end-of-text or
// either text is not valid UTF-8.
MaskedTokens render_plain_prompt_completion(const Tokenizer& tokenizer, std::string_view prompt,
                                            std::string_view completion);

}  // namespace albion::tokenizers
