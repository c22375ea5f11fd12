// File: runtime/tokenizers/content_hash.cpp
#include "runtime/tokenizers/content_hash.h"

namespace albion::tokenizers {

void ContentHasher::add_u64(std::uint64_t value) {
  char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(value >> (8 * i));  // little-endian
  digest_.update(std::string_view(bytes, 8));
}

void ContentHasher::add_string(std::string_view value) {
  add_u64(value.size());
  digest_.update(value);
}

std::string ContentHasher::finish() { return digest_.finish_hex(); }

}  // namespace albion::tokenizers
