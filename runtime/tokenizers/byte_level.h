// File: runtime/tokenizers/byte_level.h
// GPT-2's byte <-> Unicode map. Byte-level BPE files (tokenizer.json, vocab.json, merges.txt)
// spell every token as a string of printable code points, one per byte: printable Latin-1 bytes
// stand for themselves and the other 68 bytes are shifted to U+0100 and up (space -> 'Ġ').
// Albion converts token strings to raw bytes once, at load time, so encoding never maps bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace albion::tokenizers {

// The code point GPT-2 uses to spell byte b.
char32_t byte_to_code_point(unsigned char b);

// Raw bytes of a token spelled in GPT-2's alphabet, or nullopt if a code point is outside it.
// spelled must be valid UTF-8.
std::optional<std::string> byte_level_to_bytes(std::string_view spelled);

// A token's raw bytes spelled in GPT-2's alphabet (the inverse of byte_level_to_bytes).
std::string bytes_to_byte_level(std::string_view bytes);

}  // namespace albion::tokenizers
