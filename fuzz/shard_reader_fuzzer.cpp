// File: fuzz/shard_reader_fuzzer.cpp
// libFuzzer target: a shard file and the record that describes it, both chosen by the attacker
// (as for a plaintext checkpoint, whose manifest nothing authenticates). Input layout: one flag
// byte (bit 0: sealed), a 2-byte record length, the record's JSON, then the file's bytes. The
// record's digest and size are set to the file's, so the reader gets past the SHA-256 check and
// the fuzzer reaches the bounds checks and chunk reads behind it. Reads must succeed or throw
// albion::Error; they must never touch memory outside the mapped file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "checkpoint/crypto/hex.h"
#include "checkpoint/crypto/sha256.h"
#include "checkpoint/format/manifest.h"
#include "checkpoint/format/shard_reader.h"
#include "runtime/base/error.h"

namespace ckpt = albion::checkpoint;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const ckpt::DataKey key = ckpt::DataKey::from_secret(ckpt::SecretBytes(ckpt::kDataKeyBytes));
  static const std::string path = "/tmp/albion-shard-fuzz-" + std::to_string(::getpid()) + ".h5";
  if (size < 3) return 0;
  const bool sealed = data[0] & 1;
  const std::size_t record_length = data[1] | (std::size_t{data[2]} << 8);
  if (size < 3 + record_length) return 0;
  const std::string_view record_text(reinterpret_cast<const char*>(data + 3), record_length);
  const std::span<const std::uint8_t> file(data + 3 + record_length, size - 3 - record_length);
  if (file.empty()) return 0;
  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) return 0;
  std::fwrite(file.data(), 1, file.size(), out);
  std::fclose(out);
  struct RemovedAfterTheInput {  // libFuzzer may _Exit at its time limit, so no file outlives an input
    const std::string& path;
    ~RemovedAfterTheInput() { std::remove(path.c_str()); }
  } const removed_after_the_input{path};
  try {
    ckpt::ShardRecord record = ckpt::parse_shard_record_json(record_text, "fuzz");
    record.file_bytes = file.size();
    record.sha256 = ckpt::to_hex(ckpt::sha256(file));
    const ckpt::ShardReader reader(path, record, sealed ? &key : nullptr, "00000000000000000000000000000000", 64, 1);
    reader.verify_all_chunks();
    for (const ckpt::SliceRecord& slice : record.slices) {  // and a partial read of each slice
      const std::int64_t count = slice.numel / 2;
      std::vector<std::uint8_t> out_bytes(static_cast<std::size_t>(count) * ckpt::dtype_size(slice.dtype));
      reader.read(slice, slice.numel - count, count, out_bytes);
    }
  } catch (const albion::Error&) {
  }
  return 0;
}
