// File: checkpoint/crypto/sha256.cpp
#include "checkpoint/crypto/sha256.h"

#include <openssl/evp.h>

#include "checkpoint/crypto/hex.h"
#include "checkpoint/crypto/openssl_error.h"

namespace albion::checkpoint {

Sha256Digest sha256(std::span<const std::uint8_t> data) {
  Sha256Digest digest{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != digest.size()) {
    throw_openssl_error("EVP_Digest(SHA-256)");
  }
  return digest;
}

Sha256Digest sha256(std::string_view text) {
  return sha256(std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}

std::string sha256_hex(std::string_view text) { return to_hex(sha256(text)); }

}  // namespace albion::checkpoint
