// File: runtime/data/dataset_encryption.h
// Encryption at rest of a token dataset, with checkpoint/'s AES-256-GCM chunks and key providers:
//
//   - one fresh data key (DEK) per dataset, wrapped by the key-encryption key of the `--encrypt`
//     spec (file:, env:, pkcs11:); dataset.json keeps only the wrapped DEK, the key id, a random
//     dataset id and the chunk size in the clear;
//   - the full manifest (tokenizer, sources, splits, shard digests) is sealed as one chunk, so it
//     is neither readable nor editable without the key;
//   - each shard file stores its tokens, document offsets and loss mask as sealed chunks of
//     `chunk_tokens` tokens; chunk ids bind every chunk to the dataset id, the shard's file name and
//     dataset-wide file index, the tensor and the chunk's sequence number in the file
//     (Note [Nonce uniqueness] in checkpoint/crypto/chunk_cipher.h: each shard has its own file
//     index, and the manifest uses one no shard can have).
// Plaintext never touches the disk: chunks are sealed in memory before HDF5 sees them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/crypto/chunk_cipher.h"
#include "checkpoint/crypto/data_key.h"
#include "checkpoint/keys/key_provider.h"

namespace albion::data {

// Small chunks: the loader reads random windows of ~1k tokens, and every window decrypts the
// chunks it touches; 4096 tokens (8 KiB) keep that to ~10 KiB per window (tags cost 0.2%).
inline constexpr std::uint64_t kDefaultChunkTokens = 4096;
using checkpoint::kManifestFileIndex;

// What dataset.json shows without a key.
struct EncryptionHeader {
  std::string cipher = checkpoint::kChunkCipherName;
  std::string key_id;
  std::vector<std::uint8_t> wrapped_key;
  std::string dataset_id;  // 32 hex characters, random per dataset
  std::uint64_t chunk_tokens = kDefaultChunkTokens;
};

// The DEK and header of one dataset, either freshly made (writing) or unwrapped (reading).
class DatasetKey {
 public:
  static DatasetKey create(const checkpoint::KeyProvider& provider, std::uint64_t chunk_tokens);
  // IntegrityError when the provider's key is not the one the dataset was encrypted with.
  static DatasetKey open(const checkpoint::KeyProvider& provider, const EncryptionHeader& header);

  const EncryptionHeader& header() const { return header_; }
  // A cipher for one thread.
  checkpoint::ChunkCipher cipher() const { return checkpoint::ChunkCipher(dek_, header_.dataset_id); }

 private:
  DatasetKey(checkpoint::DataKey dek, EncryptionHeader header)
      : dek_(std::move(dek)), header_(std::move(header)) {}
  checkpoint::DataKey dek_;
  EncryptionHeader header_;
};

}  // namespace albion::data
