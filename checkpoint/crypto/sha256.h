// File: checkpoint/crypto/sha256.h
// SHA-256 through OpenSSL's EVP digest API: the one implementation Albion uses, for the audit
// chain, key fingerprints, dataset and shard digests, and tokenizer content hashes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace albion::checkpoint {

using Sha256Digest = std::array<std::uint8_t, 32>;

Sha256Digest sha256(std::span<const std::uint8_t> data);
Sha256Digest sha256(std::string_view text);
std::string sha256_hex(std::string_view text);

// Incremental SHA-256 for data that arrives in pieces (files, canonical serialisations).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;

  void update(std::span<const std::uint8_t> bytes);
  void update(std::string_view bytes);
  // The digest of everything added, as lower-case hex; the stream cannot be used afterwards.
  std::string finish_hex();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

}  // namespace albion::checkpoint
