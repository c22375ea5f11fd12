// File: runtime/data/sealed_token_shard.h
// Encrypted token shards (dataset_encryption.h). The file holds three uint8 datasets, each the
// concatenation of sealed chunks (ciphertext || tag), with one file-wide chunk sequence:
//   tokens       chunks 0 .. T-1, each `chunk_tokens` tokens (the last may be shorter)
//   doc_offsets  chunk T: the uint64 offsets, one chunk
//   loss_mask    chunks T+1 .. T+M, if present, chunked like the tokens
// Sizes are not read from the file: they follow from the counts in the (sealed, authenticated)
// manifest, and the file must match them exactly. Chunks are decrypted on demand and kept in a
// small cache; a chunk whose tag fails is an IntegrityError naming shard, tensor and chunk.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/crypto/chunk_cipher.h"
#include "runtime/data/token_shard.h"

namespace albion::checkpoint {
class MappedFile;
}

namespace albion::data {


// What the authenticated manifest says a sealed shard holds.
struct SealedShardExpectation {
  std::uint32_t file_index = 0;
  TokenWidth width = TokenWidth::kUint16;
  std::uint64_t vocab_size = 0;
  std::uint64_t tokens = 0;
  std::uint64_t documents = 0;
  bool has_loss_mask = false;
  std::uint64_t chunk_tokens = 0;
};

class SealedTokenShard : public ShardReader {
 public:
  // `cipher` is used by this reader's thread only.
  SealedTokenShard(const std::string& path, checkpoint::ChunkCipher cipher,
                   const SealedShardExpectation& expected);
  ~SealedTokenShard() override;

  std::uint64_t token_count() const override { return expected_.tokens; }
  bool has_loss_mask() const override { return expected_.has_loss_mask; }
  const std::vector<std::uint64_t>& doc_offsets() const override { return doc_offsets_; }
  void copy_tokens(std::uint64_t start, std::uint64_t count, std::int64_t* out) override;
  void copy_loss_mask(std::uint64_t start, std::uint64_t count, std::uint8_t* out) override;

 private:
  // Decrypted bytes of chunk `index` of the array at `offset` (element size `element_bytes`).
  const std::vector<std::uint8_t>& chunk(const char* tensor, std::uint64_t array_offset,
                                         std::uint64_t first_chunk_index, std::uint64_t chunk,
                                         std::size_t element_bytes);

  std::string path_;
  std::string file_name_;
  checkpoint::ChunkCipher cipher_;
  SealedShardExpectation expected_;
  std::unique_ptr<checkpoint::MappedFile> mapping_;
  std::uint64_t tokens_offset_ = 0;
  std::uint64_t mask_offset_ = 0;
  std::uint64_t token_chunks_ = 0;
  std::vector<std::uint64_t> doc_offsets_;
  struct CachedChunk {
    std::uint64_t chunk_index;
    std::vector<std::uint8_t> bytes;
  };
  std::list<CachedChunk> cache_;  // most recently used first
};

}  // namespace albion::data
