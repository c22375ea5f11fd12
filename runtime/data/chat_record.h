// File: runtime/data/chat_record.h
// One line of a chat dataset (`albion data prepare --format chat`): a JSON object that is either
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}   or
//   {"prompt": "...", "completion": "..."}   (a user turn, then an assistant turn),
// rendered with a chat template (llama3, llama3.1, chatml, qwen2.5) or, for base models without one (none), as the
// prompt's tokens then the completion's and end-of-text (prompt/completion conversations only).
// Errors never quote the line: chat datasets are the private data a fine-tuning run brings.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "runtime/tokenizers/chat_template.h"

namespace albion::data {

// The conversation on `line`. UsageError (without the line's content) for malformed JSON, a value
// that is not an object, an empty or malformed "messages", or neither form.
std::vector<tokenizers::ChatMessage> parse_chat_record(std::string_view line);

// `--chat-template`: llama3, llama3.1, chatml, qwen2.5, or none (std::nullopt); anything else is a UsageError.
std::optional<tokenizers::ChatTemplate> parse_record_template(std::string_view name);

// UsageError naming what `tokenizer` lacks for `chat_template` (its special tokens; without a
// template, an end-of-text token). A mismatch is a configuration error, checked once before any
// record, so --skip-bad-records cannot count every record as bad instead.
void require_template_tokens(const tokenizers::Tokenizer& tokenizer,
                             std::optional<tokenizers::ChatTemplate> chat_template);

// parse_chat_record, rendered: ids and the loss mask that is 1 on the assistant turns. With a
// template (tokenizers::render_chat) its turn markers delimit conversations, so no end-of-text
// token is appended; without one (tokenizers::render_plain_prompt_completion) the conversation
// must be one user turn and one assistant turn.
tokenizers::MaskedTokens render_chat_record(const tokenizers::Tokenizer& tokenizer,
                                            std::optional<tokenizers::ChatTemplate> chat_template,
                                            std::string_view line);

}  // namespace albion::data
