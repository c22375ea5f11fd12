// File: checkpoint/format/shard_writer.h
// Writes one rank's shard file (the layout in shard_record.h). With a DataKey, chunks are sealed
// (AES-256-GCM) by a pool of threads, each with its own ChunkCipher, while this thread writes the
// finished chunks in order and hashes them: encryption, writing and hashing overlap, and no
// plaintext byte reaches the file. Without a key the bytes are written as they are (plaintext
// checkpoints, allowed only by policy). The file is fsync'd before the function returns.
//
//   ShardRecord record = write_shard(staging / shard_file_name(rank), rank, slices, &dek, id, {});
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/crypto/data_key.h"
#include "checkpoint/format/shard_record.h"

namespace albion::checkpoint {

inline constexpr const char* kShardFormat = "albion-checkpoint-shard/1";
inline constexpr std::uint64_t kDefaultChunkBytes = 4u << 20;  // 4 MiB: tags cost 4 ppm

struct ShardWriteOptions {
  std::uint64_t chunk_bytes = kDefaultChunkBytes;
  int threads = 2;  // encryption threads (the writing thread is extra)
};

// Writes `slices` into a new file at `path` (refusing an existing one) and returns its record,
// digest included. `key` null writes plaintext.
ShardRecord write_shard(const std::filesystem::path& path, std::uint32_t index,
                        const std::vector<TensorSlice>& slices, const DataKey* key,
                        const std::string& checkpoint_id, const ShardWriteOptions& options);

}  // namespace albion::checkpoint
