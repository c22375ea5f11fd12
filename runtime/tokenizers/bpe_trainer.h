// File: runtime/tokenizers/bpe_trainer.h
// Trains a byte-level BPE on a user's corpus: GPT-2 regex pre-tokenization, word counting, then
// greedy merges of the most frequent adjacent pair. The result encodes with Albion's BPE
// tokenizer and is written as a Hugging Face tokenizer.json that Python `tokenizers` loads and
// encodes identically.
//   BpeTrainer trainer({.vocab_size = 8192});
//   for (...) trainer.add_text(document);
//   TrainedBpe bpe = trainer.train();
//   write_tokenizer_json(bpe, "out/tokenizer.json");
// Vocabulary layout: ids 0..255 are the single bytes (in byte order), then one id per merge in
// merge order, then the special tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "runtime/tokenizers/bpe_model.h"
#include "runtime/tokenizers/pretokenizer.h"
#include "runtime/tokenizers/tokenizer.h"

namespace albion::tokenizers {

struct BpeTrainerOptions {
  std::size_t vocab_size = 8192;  // bytes + merges + special tokens
  std::size_t min_frequency = 2;  // a pair seen fewer times is never merged
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  std::string pattern = std::string(kGpt2Pattern);
};

struct TrainedBpe {
  std::string pattern;
  std::vector<std::string> vocab;  // id -> raw bytes, for the BPE ids
  std::vector<MergeRule> merges;   // rank order
  std::vector<SpecialToken> special_tokens;
};

class BpeTrainer {
 public:
  // Throws UsageError if vocab_size leaves no room past the 256 bytes and special tokens.
  explicit BpeTrainer(BpeTrainerOptions options);

  // Counts the pre-tokens of one document. Invalid UTF-8 is a UsageError naming the byte offset.
  void add_text(std::string_view text);
  std::size_t distinct_words() const { return word_counts_.size(); }

  TrainedBpe train() const;

 private:
  BpeTrainerOptions options_;
  PreTokenizer pre_tokenizer_;
  std::unordered_map<std::string, std::uint64_t, StringHash, std::equal_to<>> word_counts_;
};

// The tokenizer.json text (Hugging Face format) for a trained BPE.
std::string to_tokenizer_json(const TrainedBpe& bpe);
// Writes to_tokenizer_json(bpe) to path; a failed write is a UsageError naming the path.
void write_tokenizer_json(const TrainedBpe& bpe, const std::string& path);
// An in-memory tokenizer for a trained BPE (same ids as loading the written tokenizer.json).
std::unique_ptr<Tokenizer> make_tokenizer(const TrainedBpe& bpe);

}  // namespace albion::tokenizers
