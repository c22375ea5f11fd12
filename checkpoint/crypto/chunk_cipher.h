// File: checkpoint/crypto/chunk_cipher.h
// AES-256-GCM authenticated encryption of checkpoint chunks under a checkpoint's DataKey.
// A sealed chunk is ciphertext || 16-byte tag (the nonce is not stored: it is derived from the
// chunk's position, Note [Nonce uniqueness]). The associated data binds each chunk to its
// checkpoint id, file name, file index, tensor name, chunk index and length (Note [Chunk
// associated data]), so a chunk moved to another place, file or checkpoint fails to open.
//
// Threads: a ChunkCipher owns its OpenSSL contexts and is not thread-safe. Give each worker of an
// encryption pool its own ChunkCipher (construction is cheap: one key schedule); the DataKey they
// share is read-only. There is no other state, shared or global.
//
//   ChunkCipher cipher(dek, checkpoint_id);                       // one per thread
//   cipher.seal({"shard-00003.h5", 3, "model.wte", 17}, plaintext, sealed);
//   cipher.open({"shard-00003.h5", 3, "model.wte", 17}, sealed, plaintext);  // or IntegrityError
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/crypto/data_key.h"
#include "checkpoint/crypto/openssl_handles.h"
#include "runtime/base/error.h"

namespace albion::checkpoint {

inline constexpr std::size_t kChunkTagBytes = 16;
inline constexpr std::size_t kChunkNonceBytes = 12;
inline constexpr const char* kChunkCipherName = "AES-256-GCM";
// The file index of a sealed manifest: data files count up from 0 and never reach it, so the
// manifest's nonce is never a data chunk's (Note [Nonce uniqueness]).
inline constexpr std::uint32_t kManifestFileIndex = 0xffffffffu;

// Where a chunk lives. See Note [Nonce uniqueness] for what the writer must guarantee.
struct ChunkId {
  std::string_view file_name;    // the shard file's name inside the checkpoint ("shard-00003.h5")
  std::uint32_t file_index = 0;  // the shard's index in the checkpoint (the rank that writes it)
  std::string_view tensor_name;  // "model.layers.3.mlp.w1"
  std::uint64_t chunk_index = 0; // the chunk's sequence number in its FILE, not in its tensor
};

// Note [Nonce uniqueness]
// GCM is broken by one nonce reused under one key with different plaintexts (it leaks the XOR of
// the plaintexts and lets an attacker forge tags). Albion never draws nonces at random; the 96-bit
// nonce of a chunk is its position:
//     nonce = file_index (32 bits, big-endian) || chunk_index (64 bits, big-endian)
// an injective function, so two chunks share a nonce only if they share (file_index, chunk_index)
// under the same DataKey. The writer guarantees that never happens:
//   1. every save generates a fresh DataKey (DataKey::generate); a key unwrapped from an existing
//      checkpoint is used to open chunks only, never to seal (rotate-key re-wraps the DEK and
//      re-encrypts nothing);
//   2. each shard file of a checkpoint has its own file_index (the writing rank), written once;
//   3. chunk_index counts the chunks of the whole file (0, 1, 2, ...), assigned by the one thread
//      that splits tensors into chunks before handing them to the encryption pool, so a counter
//      per tensor (which would repeat 0 for every tensor) is wrong.
// The nonce is re-derived when a chunk is opened, so a chunk read at another position gets another
// nonce and fails its tag, as the associated data would also ensure.

class ChunkCipher {
 public:
  ChunkCipher(const DataKey& key, std::string checkpoint_id);
  ChunkCipher(ChunkCipher&&) noexcept = default;
  ChunkCipher& operator=(ChunkCipher&&) noexcept = default;

  const std::string& checkpoint_id() const { return checkpoint_id_; }
  static constexpr std::size_t sealed_size(std::size_t plaintext_size) {
    return plaintext_size + kChunkTagBytes;
  }

  // Encrypts `plaintext` into `sealed` (exactly sealed_size(plaintext.size()) bytes). In place is
  // allowed: `sealed` may start at plaintext.data().
  void seal(const ChunkId& id, std::span<const std::uint8_t> plaintext, std::span<std::uint8_t> sealed);
  std::vector<std::uint8_t> seal(const ChunkId& id, std::span<const std::uint8_t> plaintext);

  // Authenticates and decrypts `sealed` into `plaintext` (exactly sealed.size() - 16 bytes). Throws
  // IntegrityError naming the checkpoint, file, tensor and chunk when the tag does not verify; then
  // `plaintext` has been zeroed, so no unauthenticated byte is ever handed back.
  void open(const ChunkId& id, std::span<const std::uint8_t> sealed, std::span<std::uint8_t> plaintext);
  std::vector<std::uint8_t> open(const ChunkId& id, std::span<const std::uint8_t> sealed);

 private:
  void add_associated_data(EVP_CIPHER_CTX* ctx, const ChunkId& id, std::uint64_t plaintext_size);
  std::string describe(const ChunkId& id) const;

  std::string checkpoint_id_;
  CipherCtxPtr seal_ctx_;  // keyed once; each chunk only sets its nonce
  CipherCtxPtr open_ctx_;
};

}  // namespace albion::checkpoint
