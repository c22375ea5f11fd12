// File: runtime/tokenizers/content_hash.cpp
// OpenSSL's EVP SHA-256, owned by a small RAII state.
#include "runtime/tokenizers/content_hash.h"

#include <openssl/evp.h>

#include "runtime/base/check.h"

namespace albion::tokenizers {

struct ContentHasher::State {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~State() { EVP_MD_CTX_free(ctx); }
};

ContentHasher::ContentHasher() : state_(std::make_unique<State>()) {
  if (state_->ctx == nullptr || EVP_DigestInit_ex(state_->ctx, EVP_sha256(), nullptr) != 1) {
    throw SystemError("OpenSSL: cannot initialise SHA-256");
  }
}

ContentHasher::~ContentHasher() = default;

void ContentHasher::add_u64(std::uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  ALBION_CHECK(EVP_DigestUpdate(state_->ctx, bytes, 8) == 1, "SHA-256 update failed");
}

void ContentHasher::add_string(std::string_view value) {
  add_u64(value.size());
  ALBION_CHECK(EVP_DigestUpdate(state_->ctx, value.data(), value.size()) == 1,
               "SHA-256 update failed");
}

std::string ContentHasher::finish() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  ALBION_CHECK(EVP_DigestFinal_ex(state_->ctx, digest, &n) == 1, "SHA-256 final failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

}  // namespace albion::tokenizers
