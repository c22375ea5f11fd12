// File: runtime/tokenizers/utf8.h
// UTF-8 validation and code point iteration for the tokenizers. Every encode() validates its input
// once here, so the regex engine (run with PCRE2_NO_UTF_CHECK) and the BPE never see invalid
// UTF-8. "Valid" is RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace albion::tokenizers {

// Byte offset of the first byte that does not start a valid UTF-8 sequence, or nullopt.
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

// Throws UsageError "<what>: invalid UTF-8 at byte offset N" when text is not valid UTF-8.
void require_valid_utf8(std::string_view text, std::string_view what);

// Appends the UTF-8 encoding of code point cp (which must be a valid scalar value).
void append_utf8(std::string& out, char32_t cp);

// Decodes the code point starting at text[pos] (text must be valid UTF-8) and advances pos.
char32_t next_code_point(std::string_view text, std::size_t& pos);

}  // namespace albion::tokenizers
