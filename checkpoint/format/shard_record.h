// File: checkpoint/format/shard_record.h
// What a shard file holds, as the manifest records it. A shard file is HDF5 with one 1-D uint8
// dataset, "data": the shard's chunks back to back (sealed: ciphertext || tag; plaintext: the
// bytes). Each tensor slice occupies consecutive chunks of at most `chunk_bytes` plaintext bytes;
// chunks are numbered through the whole file (Note [Nonce uniqueness] in chunk_cipher.h). Every
// offset and length a reader uses comes from these records, which it reads from the authenticated
// manifest, never from the shard file itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace albion::checkpoint {

// A flat range of a named tensor, as a rank hands it to the writer.
struct TensorSlice {
  std::string name;                       // "model.wte.weight", "optim.exp_avg.wte.weight"
  std::string dtype;                      // safetensors spelling: "F32", "BF16", "I64", "U8", ...
  std::vector<std::int64_t> global_shape;
  std::int64_t offset = 0;                // first element of the global tensor's stored elements
  std::int64_t numel = 0;
  std::span<const std::uint8_t> bytes;    // numel elements, little-endian
  // The tensor (2-D) is stored transposed: its elements column by column. A tensor cut by columns
  // over ranks is, so that each rank's part is one range of it (runtime/models/tensor_parallel.h).
  bool transposed = false;
};

// Where a slice lies in its shard file.
struct SliceRecord {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> global_shape;
  std::int64_t offset = 0;
  std::int64_t numel = 0;
  std::uint64_t first_chunk = 0;    // file-wide chunk number of its first chunk
  std::uint64_t chunk_count = 0;
  std::uint64_t data_position = 0;  // byte offset of its first chunk inside the data region
  bool transposed = false;          // as TensorSlice's
};

struct ShardRecord {
  std::string file;                 // "shard-00003.h5"
  std::uint32_t index = 0;          // the writing rank; the nonce's file index
  std::uint64_t file_bytes = 0;
  std::string sha256;               // of the whole file, lower-case hex
  std::uint64_t data_offset = 0;    // file offset of the "data" dataset
  std::uint64_t data_bytes = 0;
  std::vector<SliceRecord> slices;
};

// Bytes per element of a dtype name; 0 for a name Albion does not know.
std::size_t dtype_size(std::string_view dtype);

// The plaintext bytes of a slice.
inline std::uint64_t slice_bytes(const SliceRecord& slice) {
  return static_cast<std::uint64_t>(slice.numel) * dtype_size(slice.dtype);
}

// The plaintext bytes of chunk `k` of a slice of `slice_bytes` bytes, and its stored size.
inline std::uint64_t chunk_plain_bytes(std::uint64_t slice_bytes, std::uint64_t chunk_bytes, std::uint64_t k) {
  const std::uint64_t start = k * chunk_bytes;
  return slice_bytes - start < chunk_bytes ? slice_bytes - start : chunk_bytes;
}

}  // namespace albion::checkpoint
