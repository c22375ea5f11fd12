// File: checkpoint/crypto/secret_bytes.cpp
#include "checkpoint/crypto/secret_bytes.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <climits>

#include "checkpoint/crypto/openssl_error.h"

namespace albion::checkpoint {

SecretBytes::SecretBytes(std::size_t size)
    : bytes_(size == 0 ? nullptr : std::make_unique<std::uint8_t[]>(size)), size_(size) {}

SecretBytes SecretBytes::copy_of(std::span<const std::uint8_t> bytes) {
  SecretBytes secret(bytes.size());
  std::copy(bytes.begin(), bytes.end(), secret.data());
  return secret;
}

SecretBytes SecretBytes::random(std::size_t size) {
  ALBION_CHECK(size <= INT_MAX, "RAND_bytes cannot fill ", size, " bytes at once");
  SecretBytes secret(size);
  if (size > 0 && RAND_bytes(secret.data(), static_cast<int>(size)) != 1) {
    throw_openssl_error(str_cat("RAND_bytes(", size, " bytes)"));
  }
  return secret;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : bytes_(std::move(other.bytes_)), size_(other.size_) {
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_ = std::move(other.bytes_);
    size_ = other.size_;
    other.size_ = 0;
  }
  return *this;
}

SecretBytes::~SecretBytes() { wipe(); }

void SecretBytes::wipe() noexcept {
  if (bytes_ != nullptr && size_ > 0) OPENSSL_cleanse(bytes_.get(), size_);
  bytes_.reset();
  size_ = 0;
}

bool operator==(const SecretBytes& a, const SecretBytes& b) {
  return a.size_ == b.size_ && (a.size_ == 0 || CRYPTO_memcmp(a.data(), b.data(), a.size_) == 0);
}

}  // namespace albion::checkpoint
