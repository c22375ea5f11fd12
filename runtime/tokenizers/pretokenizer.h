// File: runtime/tokenizers/pretokenizer.h
// Splits text into pre-tokens ("words") before BPE: a chain of regexes, each applied to the pieces
// the previous one produced, in Hugging Face's "Isolated" mode — every match is a piece and so is
// every gap between matches, so the pieces always concatenate back to the input.
//   GPT-2:          ByteLevel(use_regex)          -> [gpt2 pattern]
//   Llama 3, Qwen 2: Split(regex) + ByteLevel(no regex) -> [their pattern]
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizers/regex.h"

namespace albion::tokenizers {

// The pattern of GPT-2's ByteLevel pre-tokenizer (Hugging Face's use_regex = true).
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class PreTokenizer {
 public:
  PreTokenizer(const std::vector<std::string>& patterns, std::string_view context);

  const std::vector<Regex>& regexes() const { return regexes_; }

  // Calls emit(std::string_view piece) for each non-empty piece of text, in order.
  template <typename Emit>
  void split(std::string_view text, Emit&& emit) const {
    if (regexes_.empty()) {
      if (!text.empty()) emit(text);
      return;
    }
    std::vector<Regex::MatchData> match;
    match.reserve(regexes_.size());
    for (const auto& r : regexes_) match.emplace_back(r);
    split_level(text, 0, match, emit);
  }

 private:
  template <typename Emit>
  void split_level(std::string_view text, std::size_t level, std::vector<Regex::MatchData>& match,
                   Emit& emit) const {
    if (level == regexes_.size()) {
      emit(text);
      return;
    }
    const Regex& regex = regexes_[level];
    std::size_t pos = 0, gap = 0, begin = 0, end = 0;
    while (pos < text.size() && regex.find(text, pos, match[level], begin, end)) {
      if (end == begin) {
        // An empty match splits nothing; step over one code point and look again.
        pos = begin + 1;
        while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
        continue;
      }
      if (begin > gap) split_level(text.substr(gap, begin - gap), level + 1, match, emit);
      split_level(text.substr(begin, end - begin), level + 1, match, emit);
      pos = gap = end;
    }
    if (gap < text.size()) split_level(text.substr(gap), level + 1, match, emit);
  }

  std::vector<Regex> regexes_;
};

}  // namespace albion::tokenizers
