// File: checkpoint/export/safetensors.h
// The Hugging Face safetensors file format (https://github.com/huggingface/safetensors):
//
//   [8 bytes]  N, the header size, unsigned little-endian
//   [N bytes]  UTF-8 JSON: {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]},
//                           ..., "__metadata__": {"<key>": "<string>", ...}}
//              padded with trailing spaces
//   [rest]     the byte buffer: each tensor's row-major little-endian bytes at [b, e), offsets
//              relative to the buffer's start, covering it exactly (no gaps, no overlaps)
//
// The writer pads the header to a multiple of 8 and lays tensors out widest dtype first, so every
// tensor starts aligned to its element size in a memory-mapped file (the layout the reference
// implementation writes). The file appears atomically and is never overwritten.
//
// The reader is strict and total: whatever the bytes, it returns an index whose every entry lies
// inside the file and agrees with its dtype and shape, or throws IntegrityError naming the file.
// It reads the published weights a fine-tuning run starts from (runtime/models/hf_import.h), and
// is fuzzed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace albion::checkpoint {

// Bytes per element of a safetensors dtype ("F32" -> 4, "BF16" -> 2, "BOOL" -> 1, ...); nullopt
// for a name the format does not define (or a sub-byte type, which Albion never writes).
std::optional<std::size_t> safetensors_dtype_size(const std::string& dtype);

struct SafetensorsTensor {
  std::string name;
  std::string dtype;                // "F32", "BF16", "F16", "I64", ...
  std::vector<std::int64_t> shape;  // {} is a scalar
  std::span<const std::uint8_t> bytes;  // row-major, little-endian; product(shape) x dtype size
};

// Writes `tensors` and `metadata` to `path`: "<path>.partial" (O_EXCL, mode 0600), fsync, rename
// without replacing, fsync of the directory. UsageError, before anything is written, when `path`
// or "<path>.partial" exists, a name repeats or is "__metadata__", a dtype is unknown, a dimension
// is negative, or a tensor's byte count does not match its shape and dtype.
void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata);

struct SafetensorsIndex {
  struct Entry {
    std::string name;
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::uint64_t begin = 0;  // [begin, end) relative to data_start
    std::uint64_t end = 0;
  };
  std::vector<Entry> entries;  // in buffer order
  std::map<std::string, std::string> metadata;
  std::uint64_t data_start = 0;  // 8 + header size: where the byte buffer starts in the file
};

// The largest header parse_safetensors_header accepts, as the reference implementation limits it.
inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

// Parses and checks the header of the whole file `file_bytes`; `what` names it in errors. Checks:
// header size within the file and the limit, valid UTF-8 JSON object starting with '{', no
// duplicate keys, each entry exactly {dtype, shape, data_offsets} with a known dtype,
// non-negative dimensions whose byte count (overflow-checked) equals end - begin, entries tiling
// the buffer exactly to the end of the file, metadata a string -> string object.
SafetensorsIndex parse_safetensors_header(std::span<const std::uint8_t> file_bytes, const std::string& what);

}  // namespace albion::checkpoint
