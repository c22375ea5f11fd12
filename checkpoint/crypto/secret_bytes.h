// File: checkpoint/crypto/secret_bytes.h
// SecretBytes owns key material: a fixed-size heap buffer that is wiped (OPENSSL_cleanse, which
// the optimiser may not elide) when it is destroyed or moved from. It is move-only, has no
// operator<< and no conversion to string, so a key cannot end up in a message or log by accident;
// code that must read the bytes (a cipher's key schedule) asks for them explicitly with data().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace albion::checkpoint {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::size_t size);  // zero-filled
  // Copies `bytes`; the caller wipes its own copy.
  static SecretBytes copy_of(std::span<const std::uint8_t> bytes);
  // `size` bytes from OpenSSL's CSPRNG (RAND_bytes); throws SystemError if it cannot seed.
  static SecretBytes random(std::size_t size);

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::uint8_t* data() { return bytes_.get(); }
  const std::uint8_t* data() const { return bytes_.get(); }
  std::span<const std::uint8_t> view() const { return {bytes_.get(), size_}; }
  std::span<std::uint8_t> mutable_view() { return {bytes_.get(), size_}; }

  // Constant-time comparison (CRYPTO_memcmp), for tests and key-equality checks.
  friend bool operator==(const SecretBytes& a, const SecretBytes& b);

 private:
  void wipe() noexcept;

  std::unique_ptr<std::uint8_t[]> bytes_;
  std::size_t size_ = 0;
};

}  // namespace albion::checkpoint
