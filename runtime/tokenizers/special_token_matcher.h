// File: runtime/tokenizers/special_token_matcher.h
// Finds special-token strings in text, so encode() can cut the text at them: the pieces between
// are encoded normally and each match becomes its token id. At any position the longest special
// token that matches wins; scanning is leftmost first. Immutable; thread-safe.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/tokenizers/tokenizer.h"

namespace albion::tokenizers {

class SpecialTokenMatcher {
 public:
  SpecialTokenMatcher() = default;
  explicit SpecialTokenMatcher(const std::vector<SpecialToken>& tokens);

  bool empty() const { return tokens_.empty(); }

  // Calls text_piece(std::string_view) for the text between matches (non-empty pieces only) and
  // special(TokenId) for each match, in order.
  template <typename TextPiece, typename Special>
  void split(std::string_view text, TextPiece&& text_piece, Special&& special) const {
    std::size_t gap = 0;
    if (!tokens_.empty()) {
      for (std::size_t i = 0; i < text.size(); ++i) {
        const auto first = static_cast<unsigned char>(text[i]);
        if (!first_byte_[first]) continue;
        const SpecialToken* hit = match_at(text, i);
        if (hit == nullptr) continue;
        if (i > gap) text_piece(text.substr(gap, i - gap));
        special(hit->id);
        gap = i + hit->text.size();
        i = gap - 1;
      }
    }
    if (gap < text.size()) text_piece(text.substr(gap));
  }

 private:
  const SpecialToken* match_at(std::string_view text, std::size_t pos) const;

  std::vector<SpecialToken> tokens_;  // longest first
  std::array<bool, 256> first_byte_{};
};

}  // namespace albion::tokenizers
