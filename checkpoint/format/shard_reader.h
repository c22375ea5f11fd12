// File: checkpoint/format/shard_reader.h
// Reads slices back from one shard file, mapped, never parsed as HDF5: offsets and lengths come
// from the (authenticated) manifest's record, never from the file, and the file's size must be the
// record's. Each sealed chunk is opened (its tag verified: the key, checkpoint, file, tensor and
// chunk number are bound into it) into the caller's buffer by a pool of threads, so a read
// authenticates exactly the bytes it uses, and a reader of a part (one rank's, or the weights
// without the optimizer state) never reads the rest. A plaintext chunk has no tag, so a plaintext
// file's SHA-256 is checked whole before its first read; verify_digest() checks a sealed one's
// (`albion ckpt verify`). Any mismatch is an IntegrityError naming the file and the check.
//
//   ShardReader shard(dir / record.file, record, &dek, manifest.header.checkpoint_id, chunk_bytes);
//   shard.read(record.slices[i], first_element, count, destination_bytes);
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "checkpoint/crypto/data_key.h"
#include "checkpoint/format/shard_record.h"

namespace albion::checkpoint {

class MappedFile;

// Told how many more bytes long work (hashing, verifying) has gone through, for a progress bar.
using ByteProgress = std::function<void(std::uint64_t bytes)>;

class ShardReader {
 public:
  // `key` null: a plaintext checkpoint. `threads`: decryption threads per read.
  // `hashed`: progress of a plaintext file's digest, checked here.
  ShardReader(const std::filesystem::path& path, ShardRecord record, const DataKey* key, std::string checkpoint_id,
              std::uint64_t chunk_bytes, int threads = 2, const ByteProgress& hashed = {});
  ~ShardReader();

  const ShardRecord& record() const { return record_; }
  bool sealed() const { return key_ != nullptr; }

  // The whole file's SHA-256 against the record's; `hashed` is told the bytes as it goes.
  void verify_digest(const ByteProgress& hashed = {}) const;

  // Elements [first, first + count) of `slice` (an entry of record().slices; `first` counts from
  // the slice's start) into `out`, exactly count * dtype size bytes. Opens only the chunks the
  // range touches; on a failed tag `out` is zeroed and IntegrityError thrown.
  void read(const SliceRecord& slice, std::int64_t first, std::int64_t count, std::span<std::uint8_t> out) const;

  // Opens every chunk of the file (`albion ckpt verify`), discarding the plaintext; `opened` is
  // told the plaintext bytes as it goes.
  void verify_all_chunks(const ByteProgress& opened = {}) const;

 private:
  std::filesystem::path path_;
  ShardRecord record_;
  const DataKey* key_;
  std::string checkpoint_id_;
  std::uint64_t chunk_bytes_;
  int threads_;
  std::unique_ptr<MappedFile> mapping_;
};

// Structural checks of a record (its slices lie inside the data region, chunk counts match the
// chunk size, no overflow), so that even an unauthenticated plaintext manifest cannot make a
// reader step outside the file. IntegrityError naming `what`.
void validate_shard_record(const ShardRecord& record, std::uint64_t chunk_bytes, bool sealed, const std::string& what);

}  // namespace albion::checkpoint
