// File: runtime/tokenizers/content_hash.h
// SHA-256 over a canonical serialisation of a tokenizer's definition (Tokenizer::content_hash).
// Every field is written with its length or as a fixed-width integer, so no two different
// definitions serialise to the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "checkpoint/crypto/sha256.h"

namespace albion::tokenizers {

class ContentHasher {
 public:
  void add_u64(std::uint64_t value);
  void add_string(std::string_view value);  // length, then bytes
  // Lower-case hex digest; the hasher cannot be used afterwards.
  std::string finish();

 private:
  checkpoint::Sha256Stream digest_;
};

}  // namespace albion::tokenizers
