// File: runtime/tokenizers/pretokenizer.cpp
// Compiles the chain of pre-tokenizer patterns (the splitting itself is inline in the header,
// since it sits on the encoding hot path).
#include "runtime/tokenizers/pretokenizer.h"

namespace albion::tokenizers {

PreTokenizer::PreTokenizer(const std::vector<std::string>& patterns, std::string_view context) {
  regexes_.reserve(patterns.size());
  for (const auto& p : patterns) regexes_.emplace_back(p, context);
}

}  // namespace albion::tokenizers
