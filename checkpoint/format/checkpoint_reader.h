// File: checkpoint/format/checkpoint_reader.h
// Opens a committed checkpoint for reading: reads manifest.json, checks the key is the one the
// checkpoint was saved under (by key id), unwraps the DEK, authenticates the manifest (Note
// [Manifest authentication]) and checks the directory's step; then reads any range of any tensor
// from whichever shards hold it, authenticating what it reads (shard_reader.h: a sealed chunk by
// its tag as it is opened, a plaintext file whole before its first use).
// Everything wrong is an IntegrityError naming the file and the check (exit code 3); an encrypted
// checkpoint opened without a key is a UsageError, and a plaintext one opened with a key an
// IntegrityError (a run with a key never accepts a checkpoint nothing authenticates).
//
//   CheckpointReader checkpoint(dir / "step-00001000", provider.get());
//   checkpoint.read("model.wte.weight", 0, numel, bytes);
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "checkpoint/crypto/data_key.h"
#include "checkpoint/format/manifest.h"
#include "checkpoint/format/shard_reader.h"
#include "checkpoint/keys/key_provider.h"

namespace albion::checkpoint {

// What a tensor is, over all its slices.
struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> global_shape;
  std::int64_t stored_elements = 0;  // summed over slices
  bool transposed = false;           // stored column by column (SliceRecord::transposed)
};

// manifest.json of `checkpoint` as text; IntegrityError when missing or implausibly large.
std::string read_manifest_text(const std::filesystem::path& checkpoint);

class CheckpointReader {
 public:
  // `key` null: only a plaintext checkpoint opens. `threads`: decryption threads per read.
  CheckpointReader(std::filesystem::path checkpoint, const KeyProvider* key, int threads = 2);
  ~CheckpointReader();

  const std::filesystem::path& path() const { return path_; }
  const CheckpointManifest& manifest() const { return manifest_; }
  std::vector<TensorInfo> tensors() const;
  std::optional<TensorInfo> tensor(const std::string& name) const;

  // Elements [offset, offset + numel) of the flattened tensor `name`, in the order it is stored
  // (TensorInfo::transposed), into `out` (numel x dtype size bytes). IntegrityError if some of them
  // are in no shard.
  void read(const std::string& name, std::int64_t offset, std::int64_t numel, std::span<std::uint8_t> out);

  // Authenticates every shard and every chunk (`albion ckpt verify`); `progress` is told the bytes
  // hashed and opened as it goes, verify_all_bytes() of them in all.
  void verify_all(const ByteProgress& progress = {});
  std::uint64_t verify_all_bytes() const;

 private:
  struct Location {
    std::size_t shard = 0;
    std::size_t slice = 0;
  };
  ShardReader& shard(std::size_t index, const ByteProgress& hashed = {});

  std::filesystem::path path_;
  CheckpointManifest manifest_;
  std::optional<DataKey> dek_;
  int threads_;
  std::map<std::string, std::vector<Location>> index_;
  std::vector<std::unique_ptr<ShardReader>> shards_;  // opened on first use
  std::mutex shards_mutex_;
};

}  // namespace albion::checkpoint
