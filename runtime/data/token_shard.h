// File: runtime/data/token_shard.h
// One HDF5 token shard: the tokens of whole documents of one split, as written by
// `albion data prepare` and read by the loader.
//
//   /tokens       uint16 or uint32 [n]   contiguous layout, so readers can memory-map it
//   /doc_offsets  uint64 [d + 1]         document i is tokens[doc_offsets[i], doc_offsets[i+1])
//   /loss_mask    uint8 [n]              optional: 1 where the token is a training target
//   attributes    format, format_version, split, tokenizer_hash, vocab_size, token_count,
//                 document_count, sources (JSON: [{path, sha256}])
//
// Readers check the file's SHA-256 against the dataset manifest before HDF5 parses a byte of it
// (token_loader.cpp), then check every structural invariant here: a shard is never silently
// misread. Encrypted shards hold the same three arrays as sealed chunks (sealed_token_shard.h).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace albion::checkpoint {
class ChunkCipher;
class MappedFile;
}

namespace albion::data {


enum class TokenWidth { kUint16, kUint32 };

inline std::size_t token_bytes(TokenWidth width) { return width == TokenWidth::kUint16 ? 2 : 4; }

const char* token_width_name(TokenWidth width);
TokenWidth token_width_for_vocab(std::uint64_t vocab_size);

struct ShardAttributes {
  std::string split;           // "train" or "val"
  std::string tokenizer_hash;  // Tokenizer::content_hash()
  std::uint64_t vocab_size = 0;
  std::string sources_json;    // [{"path": ..., "sha256": ...}] of the inputs
};

// How to seal a shard (dataset_encryption.h); writing without one stores plaintext.
struct ShardSealing {
  checkpoint::ChunkCipher* cipher = nullptr;
  std::uint32_t file_index = 0;  // unique among the dataset's shards
  std::uint64_t chunk_tokens = 0;
};

// Writes a shard to `path` (the caller writes into a temporary directory and renames it).
// `loss_mask` is empty or has one entry per token. Sealed shards carry no plaintext attributes
// beyond the format: counts, split and sources live in the sealed manifest.
void write_token_shard(const std::string& path, TokenWidth width,
                       std::span<const std::uint32_t> tokens,
                       std::span<const std::uint64_t> doc_offsets,
                       std::span<const std::uint8_t> loss_mask, const ShardAttributes& attributes,
                       const ShardSealing* sealing = nullptr);

// What the loader needs of a shard, plain or sealed.
class ShardReader {
 public:
  virtual ~ShardReader() = default;
  virtual std::uint64_t token_count() const = 0;
  virtual bool has_loss_mask() const = 0;
  // Copies tokens [start, start + count) widened to int64 (what embedding lookups take).
  virtual void copy_tokens(std::uint64_t start, std::uint64_t count, std::int64_t* out) = 0;
  // Copies the loss mask of [start, start + count); requires has_loss_mask().
  virtual void copy_loss_mask(std::uint64_t start, std::uint64_t count, std::uint8_t* out) = 0;
  // Where each document starts, then token_count(): document i is [offsets[i], offsets[i + 1]).
  virtual const std::vector<std::uint64_t>& doc_offsets() const = 0;
};

// A plain shard opened for reading: tokens and mask memory-mapped (read-only, shared page cache).
class TokenShard : public ShardReader {
 public:
  // Throws IntegrityError if the file's structure or attributes are inconsistent with the
  // expectations (`expected_width`, `vocab_size`, `expected_tokens`).
  TokenShard(const std::string& path, TokenWidth expected_width, std::uint64_t vocab_size,
             std::uint64_t expected_tokens);
  ~TokenShard();
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;

  std::uint64_t token_count() const override { return token_count_; }
  const std::vector<std::uint64_t>& doc_offsets() const override { return doc_offsets_; }
  bool has_loss_mask() const override { return mask_ != nullptr; }
  const ShardAttributes& attributes() const { return attributes_; }

  void copy_tokens(std::uint64_t start, std::uint64_t count, std::int64_t* out) override;
  void copy_loss_mask(std::uint64_t start, std::uint64_t count, std::uint8_t* out) override;

 private:
  std::string path_;
  TokenWidth width_;
  std::uint64_t token_count_ = 0;
  std::vector<std::uint64_t> doc_offsets_;
  ShardAttributes attributes_;
  std::unique_ptr<checkpoint::MappedFile> mapping_;  // the whole file, read-only
  const void* tokens_ = nullptr;
  const std::uint8_t* mask_ = nullptr;
};

}  // namespace albion::data
