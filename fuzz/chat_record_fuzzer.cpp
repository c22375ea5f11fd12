// File: fuzz/chat_record_fuzzer.cpp
// libFuzzer target: any bytes as one line of a chat dataset (`data prepare --format chat`, the
// private data a fine-tuning run brings), rendered with each template (llama3, llama3.1, chatml,
// qwen2.5, none) by two byte-level BPE tokenizers (GPT-2's and Llama 3's pre-tokenizer patterns) whose merges join
// whitespace across the template/content boundary. A record must be refused with albion::Error or
// rendered so that:
//   - ids are below vocab_size() and the loss mask has one 0/1 entry per id;
//   - the ids decode to the conversation spelled out in the template, byte for byte (Llama 3's
//     trims each message as Python's str.strip() does; Llama 3.1's opens with its system turn,
//     Qwen 2.5's with Qwen's system message when the conversation has none);
//   - the mask is 1 exactly on the tokens that hold a byte of an assistant's content and on the
//     assistant's end-of-turn token (Hugging Face's assistant mask: a token that straddles
//     template text and content is trained on, one made only of template text is not);
//   - without a template: the prompt's tokens (0), then the completion's and end-of-text (1).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/base/error.h"
#include "runtime/data/chat_record.h"
#include "runtime/tokenizers/hf_tokenizer_json.h"
#include "tests/support/tiny_bpe.h"

namespace tok = albion::tokenizers;

namespace {

constexpr std::string_view kSpecials[] = {"<|endoftext|>",     "<|begin_of_text|>", "<|start_header_id|>",
                                          "<|end_header_id|>", "<|eot_id|>",        "<|im_start|>",
                                          "<|im_end|>"};

// Merges in rank order, as raw bytes: whitespace runs (newline then space before space then
// newline, so the encoding of "\n\n" alone and of "\n\n" + content can part ways), the roles, and
// a few letters.
constexpr albion::testing_support::Merge kMerges[] = {
    {"\n", " "}, {"\n", "\n"}, {"\n\n", "\n"}, {" ", "\n"}, {"\t", "\n"}, {" ", " "}, {"\n", "\t"},
    {"\n ", "\n"}, {"u", "s"}, {"us", "e"}, {"use", "r"}, {"s", "s"}, {"a", "ss"}, {"i", "s"},
    {"t", "a"}, {"n", "t"}, {"ass", "is"}, {"ta", "nt"}, {"assis", "tant"}, {"y", "s"}, {"s", "ys"},
    {"sys", "t"}, {"e", "m"}, {"syst", "em"}, {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"},
    {" ", "w"}, {"o", "r"}, {" w", "or"}, {"1", "2"}, {"\xc3", "\xa9"}, {"<", "|"}, {"|", ">"}};

std::unique_ptr<tok::Tokenizer> make_tokenizer(std::string_view pattern) {
  return tok::parse_hf_tokenizer_json(albion::testing_support::tiny_bpe_json(pattern, kMerges, kSpecials),
                                      "chat_record_fuzzer");
}

// The conversation spelled out in the template, and the byte ranges the assistant mask covers:
// each assistant's content [begin, end) and its end-of-turn token.
struct Spelled {
  std::string text;
  std::vector<std::pair<std::size_t, std::size_t>> content;
  std::vector<std::size_t> end_of_turn;  // offsets of the assistants' end-of-turn tokens
};

// The UTF-8 encodings of the code points Python's str.strip() removes (Jinja's trim, which Llama
// 3's template applies to each message).
constexpr std::string_view kPythonWhitespace[] = {
    "\t", "\n", "\v", "\f", "\r", "\x1c", "\x1d", "\x1e", "\x1f", " ", "\u0085", "\u00a0", "\u1680",
    "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006", "\u2007", "\u2008", "\u2009",
    "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"};

std::string python_strip(std::string text) {
  for (bool stripped = true; stripped;) {
    stripped = false;
    for (std::string_view space : kPythonWhitespace) {
      if (text.starts_with(space)) {
        text.erase(0, space.size());
        stripped = true;
      }
      if (text.ends_with(space)) {
        text.erase(text.size() - space.size());
        stripped = true;
      }
    }
  }
  return text;
}

Spelled spell(tok::ChatTemplate chat_template, const std::vector<tok::ChatMessage>& messages) {
  const bool llama3 = chat_template == tok::ChatTemplate::kLlama3 || chat_template == tok::ChatTemplate::kLlama31;
  Spelled out;
  if (llama3) out.text = "<|begin_of_text|>";
  if (chat_template == tok::ChatTemplate::kQwen25 && messages[0].role != "system") {  // Qwen's own system turn
    out.text += "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n";
  }
  std::size_t first = 0;
  if (chat_template == tok::ChatTemplate::kLlama31) {  // its system turn, always there
    out.text += "<|start_header_id|>system<|end_header_id|>\n\n"
                "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
    if (messages[0].role == "system") out.text += python_strip(messages[first++].content);
    out.text += "<|eot_id|>";
  }
  for (const tok::ChatMessage& m : std::span(messages).subspan(first)) {
    out.text += llama3 ? "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" : "<|im_start|>" + m.role + "\n";
    const std::string content = llama3 ? python_strip(m.content) : m.content;
    const bool assistant = m.role == "assistant";
    if (assistant) {
      out.content.emplace_back(out.text.size(), out.text.size() + content.size());
    }
    out.text += content;
    if (assistant) out.end_of_turn.push_back(out.text.size());
    out.text += llama3 ? "<|eot_id|>" : "<|im_end|>\n";
  }
  return out;
}

void require(bool holds) {
  if (!holds) std::abort();
}

void check_shape(const tok::Tokenizer& tokenizer, const tok::MaskedTokens& rendered) {
  require(rendered.ids.size() == rendered.loss_mask.size());
  for (std::size_t i = 0; i < rendered.ids.size(); ++i) {
    require(rendered.ids[i] < tokenizer.vocab_size() && rendered.loss_mask[i] <= 1);
  }
}

void check_template(const tok::Tokenizer& tokenizer, tok::ChatTemplate chat_template,
                    const std::vector<tok::ChatMessage>& messages, const tok::MaskedTokens& rendered) {
  const Spelled spelled = spell(chat_template, messages);
  require(tokenizer.decode(rendered.ids) == spelled.text);
  std::size_t offset = 0;
  for (std::size_t i = 0; i < rendered.ids.size(); ++i) {
    const std::size_t size = tokenizer.decode(std::span(&rendered.ids[i], 1)).size();
    bool trained = false;
    for (const auto& [begin, end] : spelled.content) {
      trained = trained || (offset < end && begin < offset + size);
    }
    for (std::size_t end_of_turn : spelled.end_of_turn) {
      trained = trained || offset == end_of_turn;  // the special token after the content
    }
    require(rendered.loss_mask[i] == (trained ? 1 : 0));
    offset += size;
  }
}

void check_plain(const tok::Tokenizer& tokenizer, const std::vector<tok::ChatMessage>& messages,
                 const tok::MaskedTokens& rendered) {
  require(messages.size() == 2);
  std::vector<tok::TokenId> prompt, completion;
  for (std::size_t i = 0; i < rendered.ids.size(); ++i) {
    (rendered.loss_mask[i] ? completion : prompt).push_back(rendered.ids[i]);
    require(i == 0 || rendered.loss_mask[i] >= rendered.loss_mask[i - 1]);  // 0s, then 1s
  }
  require(tokenizer.decode(prompt) == messages[0].content);
  require(tokenizer.decode(completion) == messages[1].content + "<|endoftext|>");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::unique_ptr<tok::Tokenizer> tokenizers[] = {
      make_tokenizer(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"),
      make_tokenizer(R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)")};
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  std::vector<tok::ChatMessage> messages;
  try {
    messages = albion::data::parse_chat_record(line);
  } catch (const albion::Error&) {
    return 0;
  }
  require(!messages.empty());
  for (const auto& tokenizer : tokenizers) {
    for (const std::optional<tok::ChatTemplate> chat_template :
         {std::optional(tok::ChatTemplate::kLlama3), std::optional(tok::ChatTemplate::kLlama31),
          std::optional(tok::ChatTemplate::kChatML), std::optional(tok::ChatTemplate::kQwen25),
          std::optional<tok::ChatTemplate>()}) {
      try {
        const tok::MaskedTokens rendered = albion::data::render_chat_record(*tokenizer, chat_template, line);
        check_shape(*tokenizer, rendered);
        if (chat_template) {
          check_template(*tokenizer, *chat_template, messages, rendered);
        } else {
          check_plain(*tokenizer, messages, rendered);
        }
      } catch (const albion::Error&) {
        // An unknown role, or a conversation without a plain form: refused, as it may be.
      }
    }
  }
  return 0;
}
