// File: runtime/tokenizers/byte_level.cpp
// The map is computed, not tabulated: bytes '!'..'~', 0xA1..0xAC and 0xAE..0xFF keep their own
// code point; the remaining bytes, in increasing order, get U+0100, U+0101, ...
#include "runtime/tokenizers/byte_level.h"

#include <array>

#include "runtime/tokenizers/utf8.h"

namespace albion::tokenizers {
namespace {

bool keeps_own_code_point(unsigned b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct ByteLevelTables {
  std::array<char32_t, 256> to_cp{};
  std::array<int, 324> from_cp{};  // code points < 0x144; -1 outside the alphabet

  ByteLevelTables() {
    from_cp.fill(-1);
    char32_t next = 0x100;
    for (unsigned b = 0; b < 256; ++b) {
      to_cp[b] = keeps_own_code_point(b) ? static_cast<char32_t>(b) : next++;
      from_cp[to_cp[b]] = static_cast<int>(b);
    }
  }
};

const ByteLevelTables& tables() {
  static const ByteLevelTables kTables;
  return kTables;
}

}  // namespace

char32_t byte_to_code_point(unsigned char b) { return tables().to_cp[b]; }

std::optional<std::string> byte_level_to_bytes(std::string_view spelled) {
  const auto& t = tables();
  std::string out;
  out.reserve(spelled.size());
  std::size_t pos = 0;
  while (pos < spelled.size()) {
    const char32_t cp = next_code_point(spelled, pos);
    if (cp >= t.from_cp.size() || t.from_cp[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.from_cp[cp]));
  }
  return out;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) append_utf8(out, tables().to_cp[b]);
  return out;
}

}  // namespace albion::tokenizers
