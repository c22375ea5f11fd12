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

struct Sha256Stream::Context {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Context() { EVP_MD_CTX_free(md); }
};

Sha256Stream::Sha256Stream() : context_(std::make_unique<Context>()) {
  if (context_->md == nullptr || EVP_DigestInit_ex(context_->md, EVP_sha256(), nullptr) != 1) {
    throw_openssl_error("EVP_DigestInit_ex(SHA-256)");
  }
}

Sha256Stream::~Sha256Stream() = default;

void Sha256Stream::update(std::span<const std::uint8_t> bytes) {
  if (EVP_DigestUpdate(context_->md, bytes.data(), bytes.size()) != 1) {
    throw_openssl_error("EVP_DigestUpdate(SHA-256)");
  }
}

void Sha256Stream::update(std::string_view bytes) {
  update(std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

std::string Sha256Stream::finish_hex() {
  Sha256Digest digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context_->md, digest.data(), &length) != 1 || length != digest.size()) {
    throw_openssl_error("EVP_DigestFinal_ex(SHA-256)");
  }
  return to_hex(digest);
}

}  // namespace albion::checkpoint
