// File: fuzz/manifest_fuzzer.cpp
// libFuzzer target: any bytes as manifest.json. The parsers must accept or throw albion::Error,
// never crash, hang or read out of bounds: the public header, the full plaintext body (the path
// an attacker controls completely), the sealed body under a fixed key, a shard record from
// another rank, and the structural checks of every shard record that parses.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "checkpoint/format/manifest.h"
#include "checkpoint/format/shard_reader.h"
#include "runtime/base/error.h"

namespace ckpt = albion::checkpoint;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const ckpt::DataKey key = ckpt::DataKey::from_secret(ckpt::SecretBytes(ckpt::kDataKeyBytes));
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    ckpt::parse_manifest_header(text, "fuzz");
  } catch (const albion::Error&) {
  }
  for (const ckpt::DataKey* k : {static_cast<const ckpt::DataKey*>(nullptr), &key}) {
    try {
      const ckpt::CheckpointManifest manifest = ckpt::parse_manifest(text, k, "fuzz");
      for (const ckpt::ShardRecord& shard : manifest.shards) {
        ckpt::validate_shard_record(shard, manifest.header.chunk_bytes, k != nullptr, "fuzz");
      }
    } catch (const albion::Error&) {
    }
  }
  try {
    ckpt::validate_shard_record(ckpt::parse_shard_record_json(text, "fuzz"), 4096, true, "fuzz");
  } catch (const albion::Error&) {
  }
  return 0;
}
