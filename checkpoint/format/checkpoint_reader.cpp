// File: checkpoint/format/checkpoint_reader.cpp
#include "checkpoint/format/checkpoint_reader.h"

#include <algorithm>

#include "checkpoint/format/checkpoint_paths.h"
#include "checkpoint/format/json_fields.h"
#include "checkpoint/format/shard_reader.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {

namespace fs = std::filesystem;

std::string read_manifest_text(const fs::path& checkpoint) {
  const fs::path path = checkpoint / kManifestFileName;
  std::error_code error;
  ALBION_CHECK_AS(UsageError, fs::is_directory(checkpoint, error), checkpoint.string(), ": no such checkpoint directory");
  ALBION_CHECK_AS(IntegrityError, fs::exists(path, error), path.string(), ": manifest is missing");
  return read_json_document(path);
}

CheckpointReader::CheckpointReader(fs::path checkpoint, const KeyProvider* key, int threads)
    : path_(std::move(checkpoint)), threads_(threads) {
  const std::string what = (path_ / kManifestFileName).string();
  const std::string text = read_manifest_text(path_);
  const CheckpointHeader header = parse_manifest_header(text, what);
  // A run that has a key must never accept a plaintext checkpoint in place of its own: nothing
  // would authenticate it (a downgrade).
  ALBION_CHECK_AS(IntegrityError, key == nullptr || header.encrypted(), what,
                  ": the checkpoint is not encrypted, but a key was given: refusing an unauthenticated checkpoint");
  if (header.encrypted()) {
    ALBION_CHECK_AS(UsageError, key != nullptr, path_.string(), ": the checkpoint is encrypted (key id ",
                    header.key_id, "); pass its key");
    ALBION_CHECK_AS(IntegrityError, key->key_id() == header.key_id, path_.string(),
                    ": wrong key: the checkpoint's data key is wrapped under key id ", header.key_id, ", not ",
                    key->key_id());
    try {
      dek_ = key->unwrap(header.wrapped_key);
    } catch (const IntegrityError& error) {
      throw IntegrityError(str_cat(what, ": ", error.what()));
    }
  }
  manifest_ = parse_manifest(text, dek_ ? &*dek_ : nullptr, what);
  const std::optional<std::int64_t> step = parse_step_directory_name(path_.filename().string());
  ALBION_CHECK_AS(IntegrityError, step && *step == manifest_.header.step, what, ": step check failed: the manifest is ",
                  "for step ", manifest_.header.step, ", the directory is ", path_.filename().string(),
                  " (a manifest from another step)");
  for (std::size_t s = 0; s < manifest_.shards.size(); ++s) {
    validate_shard_record(manifest_.shards[s], manifest_.header.chunk_bytes, dek_.has_value(), what);
    for (std::size_t i = 0; i < manifest_.shards[s].slices.size(); ++i) {
      index_[manifest_.shards[s].slices[i].name].push_back({s, i});
    }
  }
  for (const auto& [name, locations] : index_) {
    const SliceRecord& first = manifest_.shards[locations.front().shard].slices[locations.front().slice];
    ALBION_CHECK_AS(IntegrityError, !first.transposed || first.global_shape.size() == 2, what, ": tensor ", name,
                    " is stored transposed but is not 2-D");
    for (const Location& at : locations) {
      const SliceRecord& slice = manifest_.shards[at.shard].slices[at.slice];
      ALBION_CHECK_AS(IntegrityError,
                      slice.dtype == first.dtype && slice.global_shape == first.global_shape &&
                          slice.transposed == first.transposed,
                      what, ": tensor ", name, " has slices of different dtypes, shapes or orders");
    }
  }
  shards_.resize(manifest_.shards.size());
}

CheckpointReader::~CheckpointReader() = default;

std::vector<TensorInfo> CheckpointReader::tensors() const {
  std::vector<TensorInfo> out;
  for (const auto& [name, locations] : index_) out.push_back(*tensor(name));
  return out;
}

std::optional<TensorInfo> CheckpointReader::tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  TensorInfo info;
  info.name = name;
  for (const Location& at : it->second) {
    const SliceRecord& slice = manifest_.shards[at.shard].slices[at.slice];
    info.dtype = slice.dtype;
    info.global_shape = slice.global_shape;
    info.transposed = slice.transposed;
    info.stored_elements += slice.numel;
  }
  return info;
}

ShardReader& CheckpointReader::shard(std::size_t index, const ByteProgress& hashed) {
  std::lock_guard lock(shards_mutex_);
  if (!shards_[index]) {
    const ShardRecord& record = manifest_.shards[index];
    shards_[index] = std::make_unique<ShardReader>(path_ / record.file, record, dek_ ? &*dek_ : nullptr,
                                                   manifest_.header.checkpoint_id, manifest_.header.chunk_bytes,
                                                   threads_, hashed);
  }
  return *shards_[index];
}

void CheckpointReader::read(const std::string& name, std::int64_t offset, std::int64_t numel,
                            std::span<std::uint8_t> out) {
  auto it = index_.find(name);
  ALBION_CHECK_AS(IntegrityError, it != index_.end(), path_.string(), ": the checkpoint has no tensor '", name, "'");
  const SliceRecord& first = manifest_.shards[it->second.front().shard].slices[it->second.front().slice];
  const std::size_t element = dtype_size(first.dtype);
  ALBION_CHECK(offset >= 0 && numel >= 0 && out.size() == static_cast<std::uint64_t>(numel) * element,
               path_.string(), ": bad read of ", name);
  std::int64_t covered = 0;
  for (const Location& at : it->second) {
    const SliceRecord& slice = manifest_.shards[at.shard].slices[at.slice];
    const std::int64_t begin = std::max(offset, slice.offset);
    const std::int64_t end = std::min(offset + numel, slice.offset + slice.numel);
    if (begin >= end) continue;
    shard(at.shard).read(slice, begin - slice.offset, end - begin,
                         out.subspan(static_cast<std::size_t>(begin - offset) * element,
                                     static_cast<std::size_t>(end - begin) * element));
    covered += end - begin;
  }
  // Slices of one tensor never overlap (each range is saved by one rank), so the sum is exact.
  ALBION_CHECK_AS(IntegrityError, covered == numel, path_.string(), ": tensor ", name, " elements [", offset, ", ",
                  offset + numel, ") are not all in the checkpoint (", covered, " found)");
}

void CheckpointReader::verify_all(const ByteProgress& progress) {
  for (std::size_t s = 0; s < manifest_.shards.size(); ++s) {
    bool opened_before = false;
    {
      std::lock_guard lock(shards_mutex_);
      opened_before = shards_[s] != nullptr;
    }
    ShardReader& reader = shard(s, progress);  // a plaintext file is hashed as it opens
    if (reader.sealed()) {
      reader.verify_digest(progress);
    } else if (opened_before && progress) {
      progress(manifest_.shards[s].file_bytes);  // hashed when a read opened it
    }
    reader.verify_all_chunks(progress);
  }
}

std::uint64_t CheckpointReader::verify_all_bytes() const {
  std::uint64_t bytes = 0;
  for (const ShardRecord& shard : manifest_.shards) {
    bytes += shard.file_bytes;  // hashed
    for (const SliceRecord& slice : shard.slices) bytes += slice_bytes(slice);
  }
  return bytes;
}

}  // namespace albion::checkpoint
