// File: runtime/tokenizers/tokenizer.h
// One interface for every tokenizer Albion reads or trains: byte-level BPE (Hugging Face
// tokenizer.json, GPT-2 vocab.json + merges.txt), SentencePiece .model files, a BPE trained on a
// user's corpus, and a byte tokenizer (vocab 256) for tiny demos.
//
// Invariants every implementation keeps:
//   - decode(encode(text)) == text for any valid UTF-8 text (special tokens handled as below;
//     a tokenizer.json with add_prefix_space, as Hugging Face's, puts a space before text that
//     does not start with one);
//   - ids are < vocab_size();
//   - content_hash() changes whenever any id a text could map to changes, and only then, so a
//     dataset records exactly which tokenizer produced it.
// Tokenizers are immutable after loading and safe to use from many threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace albion::tokenizers {

using TokenId = std::uint32_t;

// Whether special-token strings in the input ("<|endoftext|>") become their ids or stay text.
// Untrusted document text is encoded with kAsText so a document cannot forge control tokens; chat
// templates, which write special tokens on purpose, use kRecognize.
enum class SpecialTokens { kAsText, kRecognize };

struct SpecialToken {
  std::string text;  // e.g. "<|endoftext|>", "<|start_header_id|>"
  TokenId id;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::vector<TokenId> encode(std::string_view text,
                                      SpecialTokens special = SpecialTokens::kAsText) const = 0;
  virtual std::string decode(std::span<const TokenId> ids) const = 0;
  virtual std::size_t vocab_size() const = 0;
  virtual const std::vector<SpecialToken>& special_tokens() const = 0;
  // The token that separates documents in a token stream (GPT-2's <|endoftext|>, Llama 3's
  // <|end_of_text|>, SentencePiece's </s>), if the tokenizer has one.
  virtual std::optional<TokenId> end_of_text() const = 0;
  // Lower-case hex SHA-256 over a canonical serialisation of the vocabulary, merges/scores,
  // pre-tokenizer and special tokens (not over the file bytes: formatting changes do not matter).
  virtual std::string content_hash() const = 0;
  // One line for humans, e.g. "byte-level BPE from tokenizer.json, 50257 tokens".
  virtual std::string description() const = 0;
};

// Loads a tokenizer from a spec (the `--tokenizer` argument and the recipe's data.tokenizer):
//   byte                         256 byte values, plus <|endoftext|> = 256
//   hf:PATH/tokenizer.json       Hugging Face byte-level BPE (GPT-2, Llama 3, Qwen 2 style)
//   gpt2:DIR                     DIR/vocab.json + DIR/merges.txt (GPT-2's original files)
//   sentencepiece:PATH.model     SentencePiece model (Llama 2, Mistral)
// Throws UsageError naming the file (and line, where there is one) for a missing, unreadable or
// malformed definition.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& spec);

}  // namespace albion::tokenizers
