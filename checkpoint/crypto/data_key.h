// File: checkpoint/crypto/data_key.h
// DataKey is a checkpoint's data-encryption key (DEK): 256 random bits, generated fresh for every
// checkpoint (Note [Nonce uniqueness] in chunk_cipher.h depends on that), stored on disk only
// wrapped by a key-encryption key (checkpoint/keys/). Immutable after construction, so one DataKey
// may be shared read-only by every encryption thread.
#pragma once

#include <cstddef>

#include "checkpoint/crypto/secret_bytes.h"
#include "runtime/base/error.h"

namespace albion::checkpoint {

inline constexpr std::size_t kDataKeyBytes = 32;

class DataKey {
 public:
  // A fresh key from OpenSSL's CSPRNG, for a new checkpoint.
  static DataKey generate();
  // A key recovered by unwrapping (or received from the rank that generated it). Throws
  // IntegrityError when `secret` is not 32 bytes: it came from a file, so never trust its size.
  static DataKey from_secret(SecretBytes secret);

  const SecretBytes& secret() const { return secret_; }

 private:
  explicit DataKey(SecretBytes secret) : secret_(std::move(secret)) {}
  SecretBytes secret_;
};

}  // namespace albion::checkpoint
