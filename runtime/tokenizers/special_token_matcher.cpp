// File: runtime/tokenizers/special_token_matcher.cpp
// Candidates are filtered by their first byte (special tokens nearly all start with '<'), then
// compared longest first; text rarely contains the first byte, so the scan costs little.
#include "runtime/tokenizers/special_token_matcher.h"

#include <algorithm>

namespace albion::tokenizers {

SpecialTokenMatcher::SpecialTokenMatcher(const std::vector<SpecialToken>& tokens) {
  for (const auto& t : tokens) {
    if (t.text.empty()) continue;
    tokens_.push_back(t);
    first_byte_[static_cast<unsigned char>(t.text[0])] = true;
  }
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const SpecialToken& a, const SpecialToken& b) {
                     return a.text.size() > b.text.size();
                   });
}

const SpecialToken* SpecialTokenMatcher::match_at(std::string_view text, std::size_t pos) const {
  const std::string_view rest = text.substr(pos);
  for (const auto& t : tokens_) {
    if (rest.starts_with(t.text)) return &t;
  }
  return nullptr;
}

}  // namespace albion::tokenizers
