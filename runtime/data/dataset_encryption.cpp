// File: runtime/data/dataset_encryption.cpp
#include "runtime/data/dataset_encryption.h"

#include "checkpoint/crypto/hex.h"
#include "checkpoint/crypto/secret_bytes.h"
#include "runtime/base/check.h"

namespace albion::data {

DatasetKey DatasetKey::create(const checkpoint::KeyProvider& provider, std::uint64_t chunk_tokens) {
  ALBION_CHECK_AS(UsageError, chunk_tokens > 0, "encryption chunk size must be positive");
  checkpoint::DataKey dek = checkpoint::DataKey::generate();
  EncryptionHeader header;
  header.key_id = provider.key_id();
  header.wrapped_key = provider.wrap(dek);
  header.dataset_id = checkpoint::to_hex(checkpoint::SecretBytes::random(16).view());
  header.chunk_tokens = chunk_tokens;
  return DatasetKey(std::move(dek), std::move(header));
}

DatasetKey DatasetKey::open(const checkpoint::KeyProvider& provider, const EncryptionHeader& header) {
  ALBION_CHECK_AS(IntegrityError, provider.key_id() == header.key_id, "the key ", provider.spec(),
                  " (id ", provider.key_id(), ") is not the dataset's key (id ", header.key_id, ")");
  ALBION_CHECK_AS(IntegrityError, header.cipher == checkpoint::kChunkCipherName,
                  "unsupported dataset cipher '", header.cipher, "'");
  return DatasetKey(provider.unwrap(header.wrapped_key), header);
}

}  // namespace albion::data
