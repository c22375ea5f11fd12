// File: runtime/tokenizers/chat_template.cpp
// Rendering works on segments: a special token (by id) or a run of text between special tokens.
// A text run made of template text followed by content ("\n\n" + content in Llama 3, role + "\n"
// + content in ChatML) is encoded whole, like Hugging Face does, and masked as Hugging Face's
// assistant mask is: a token is trained on when it holds content, so one that straddles the
// boundary is, and one made only of template text is not (even where the template text alone
// would be encoded differently: merges can bind its last bytes to the content's first).
#include "runtime/tokenizers/chat_template.h"

#include "runtime/base/check.h"
#include "runtime/tokenizers/utf8.h"

namespace albion::tokenizers {
namespace {

TokenId require_special(const Tokenizer& tok, std::string_view name, std::string_view tmpl) {
  for (const auto& s : tok.special_tokens()) {
    if (s.text == name) return s.id;
  }
  throw UsageError(str_cat("chat template ", tmpl, ": tokenizer (", tok.description(),
                           ") has no special token ", name));
}

class Renderer {
 public:
  explicit Renderer(const Tokenizer& tok) : tok_(tok) {}

  void special(TokenId id, bool train) {
    out_.ids.push_back(id);
    out_.loss_mask.push_back(train ? 1 : 0);
  }

  // Encodes prefix + content as one piece; tokens made only of prefix text get mask 0, the rest
  // `train`.
  void text(std::string_view prefix, std::string_view content, bool train) {
    const std::vector<TokenId> ids = tok_.encode(str_cat(prefix, content), SpecialTokens::kAsText);
    // The prefix is a few bytes, so this decodes a few short runs.
    std::size_t boundary = 0;
    while (boundary < ids.size() &&
           prefix.starts_with(tok_.decode(std::span(ids).first(boundary + 1)))) {
      ++boundary;
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      out_.ids.push_back(ids[i]);
      out_.loss_mask.push_back(train && i >= boundary ? 1 : 0);
    }
  }

  MaskedTokens take() { return std::move(out_); }

 private:
  const Tokenizer& tok_;
  MaskedTokens out_;
};

// Python's str.isspace(), which Jinja's trim filter strips: general category Zs, or bidirectional
// class WS, B or S.
bool is_python_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// `text` (valid UTF-8) without leading and trailing whitespace, as Jinja's trim filter.
std::string_view trimmed(std::string_view text) {
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t next = begin;
    if (!is_python_whitespace(next_code_point(text, next))) break;
    begin = next;
  }
  std::size_t end = text.size();
  while (end > begin) {
    std::size_t start = end - 1;
    while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;  // continuation bytes
    std::size_t pos = start;
    if (!is_python_whitespace(next_code_point(text, pos))) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

// The two constants below are also spliced into Jinja string literals (hugging_face_chat_template):
// no quote or backslash in them.
// What Meta's Llama 3.1 template writes before the system message, with its default date.
constexpr std::string_view kLlama31Preamble = "\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";

// What Qwen 2.5's template puts in the system turn when the conversation brings none.
constexpr std::string_view kQwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

enum class Role { kSystem, kUser, kAssistant };

Role parse_role(const ChatMessage& m, std::size_t index) {
  if (m.role == "system") return Role::kSystem;
  if (m.role == "user") return Role::kUser;
  if (m.role == "assistant") return Role::kAssistant;
  // The value is not echoed: it comes from a dataset that may be private, and errors reach logs.
  throw UsageError(str_cat("chat message ", index, ": unknown role (a ", m.role.size(),
                           "-byte value, not shown; expected system, user or assistant)"));
}

}  // namespace

ChatTemplate parse_chat_template(std::string_view name) {
  if (name == "llama3") return ChatTemplate::kLlama3;
  if (name == "llama3.1") return ChatTemplate::kLlama31;
  if (name == "chatml") return ChatTemplate::kChatML;
  if (name == "qwen2.5") return ChatTemplate::kQwen25;
  throw UsageError(str_cat("unknown chat template '", name, "' (expected llama3, llama3.1, chatml or qwen2.5)"));
}

namespace {

// The conversation, and with `generation_prompt` the assistant's header after it; sets
// `end_of_turn` to the template's end-of-turn token.
MaskedTokens render(const Tokenizer& tok, ChatTemplate chat_template, std::span<const ChatMessage> messages,
                    bool generation_prompt, TokenId& end_of_turn) {
  std::vector<Role> roles;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    roles.push_back(parse_role(messages[i], i));
    require_valid_utf8(messages[i].content, str_cat("chat message ", i));
  }
  Renderer r(tok);
  if (chat_template == ChatTemplate::kLlama3 || chat_template == ChatTemplate::kLlama31) {
    const char* name = chat_template == ChatTemplate::kLlama3 ? "llama3" : "llama3.1";
    const TokenId begin = require_special(tok, "<|begin_of_text|>", name);
    const TokenId start_header = require_special(tok, "<|start_header_id|>", name);
    const TokenId end_header = require_special(tok, "<|end_header_id|>", name);
    const TokenId eot = require_special(tok, end_of_turn_token(chat_template), name);
    r.special(begin, false);
    std::size_t first = 0;
    if (chat_template == ChatTemplate::kLlama31) {
      // The system turn is always there; a leading system message goes into it, after the preamble.
      std::string_view system;
      if (!messages.empty() && roles[0] == Role::kSystem) system = trimmed(messages[first++].content);
      r.special(start_header, false);
      r.text("system", "", false);
      r.special(end_header, false);
      r.text(kLlama31Preamble, system, false);
      r.special(eot, false);
    }
    for (std::size_t i = first; i < messages.size(); ++i) {
      const bool train = roles[i] == Role::kAssistant;
      r.special(start_header, false);
      r.text(messages[i].role, "", false);
      r.special(end_header, false);
      r.text("\n\n", trimmed(messages[i].content), train);
      r.special(eot, train);
    }
    if (generation_prompt) {
      r.special(start_header, false);
      r.text("assistant", "", false);
      r.special(end_header, false);
      r.text("\n\n", "", false);
    }
    end_of_turn = eot;
  } else {
    const char* name = chat_template == ChatTemplate::kChatML ? "chatml" : "qwen2.5";
    const TokenId start = require_special(tok, "<|im_start|>", name);
    const TokenId end = require_special(tok, end_of_turn_token(chat_template), name);
    if (chat_template == ChatTemplate::kQwen25 && (messages.empty() || roles[0] != Role::kSystem)) {
      r.special(start, false);
      r.text("system\n", kQwenDefaultSystem, false);
      r.special(end, false);
      r.text("\n", "", false);
    }
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const bool train = roles[i] == Role::kAssistant;
      r.special(start, false);
      r.text(messages[i].role + "\n", messages[i].content, train);
      r.special(end, train);
      r.text("\n", "", false);
    }
    if (generation_prompt) {
      r.special(start, false);
      r.text("assistant\n", "", false);
    }
    end_of_turn = end;
  }
  return r.take();
}

}  // namespace

MaskedTokens render_chat(const Tokenizer& tok, ChatTemplate chat_template,
                         std::span<const ChatMessage> messages) {
  TokenId end_of_turn = 0;
  return render(tok, chat_template, messages, /*generation_prompt=*/false, end_of_turn);
}

GenerationPrompt render_generation_prompt(const Tokenizer& tok, ChatTemplate chat_template,
                                          std::span<const ChatMessage> messages) {
  GenerationPrompt out{};
  out.ids = render(tok, chat_template, messages, /*generation_prompt=*/true, out.end_of_turn).ids;
  return out;
}

std::string_view end_of_turn_token(ChatTemplate chat_template) {
  return chat_template == ChatTemplate::kLlama3 || chat_template == ChatTemplate::kLlama31 ? "<|eot_id|>"
                                                                                          : "<|im_end|>";
}

// What render() writes, in Jinja; one line, its whitespace control stripping nothing of the output.
std::string hugging_face_chat_template(ChatTemplate chat_template) {
  if (chat_template == ChatTemplate::kLlama3 || chat_template == ChatTemplate::kLlama31) {
    const std::string turns =
        "{%- for message in turns -%}{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + "
        "(message['content'] | trim) + '<|eot_id|>' -}}{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}";
    if (chat_template == ChatTemplate::kLlama3) {
      return "{{- '<|begin_of_text|>' -}}{%- set turns = messages -%}" + turns;
    }
    return str_cat(
        "{{- '<|begin_of_text|>' -}}",
        "{%- if messages and messages[0]['role'] == 'system' -%}",
        "{%- set system = messages[0]['content'] | trim -%}{%- set turns = messages[1:] -%}",
        "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}",
        "{{- '<|start_header_id|>system<|end_header_id|>", kLlama31Preamble, "' + system + '<|eot_id|>' -}}", turns);
  }
  std::string opening;
  if (chat_template == ChatTemplate::kQwen25) {
    opening = str_cat("{%- if not messages or messages[0]['role'] != 'system' -%}{{- '<|im_start|>system\\n",
                      kQwenDefaultSystem, "<|im_end|>\\n' -}}{%- endif -%}");
  }
  return opening +
         "{%- for message in messages -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
         "'<|im_end|>\\n' -}}{%- endfor -%}"
         "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";
}

MaskedTokens render_plain_prompt_completion(const Tokenizer& tok, std::string_view prompt,
                                            std::string_view completion) {
  const auto eot = tok.end_of_text();
  ALBION_CHECK_AS(UsageError, eot.has_value(), "prompt/completion: tokenizer (",
                  tok.description(), ") has no end-of-text token");
  require_valid_utf8(prompt, "prompt");
  require_valid_utf8(completion, "completion");
  MaskedTokens out;
  out.ids = tok.encode(prompt, SpecialTokens::kAsText);
  out.loss_mask.assign(out.ids.size(), 0);
  const auto completion_ids = tok.encode(completion, SpecialTokens::kAsText);
  out.ids.insert(out.ids.end(), completion_ids.begin(), completion_ids.end());
  out.ids.push_back(*eot);
  out.loss_mask.resize(out.ids.size(), 1);
  return out;
}

}  // namespace albion::tokenizers
