// File: checkpoint/format/manifest.h
// A checkpoint's manifest.json: a public header anyone may read (format, step, checkpoint id,
// cipher, key id, wrapped data key, chunk size) and a body with everything else (world layout,
// resolved recipe, trainer state, shard records: tensor index and file digests).
//
// Note [Manifest authentication]
// Encrypted checkpoints store the body sealed as one AES-256-GCM chunk under the checkpoint's DEK,
// at file index kManifestFileIndex, with the checkpoint id in its associated data. The body repeats
// every header field but the key wrapping (key id, wrapped DEK), and the reader requires them
// equal, so editing the header or the body, or swapping in another checkpoint's manifest, fails
// authentication (the step is also checked against the directory's name). The key wrapping is left
// out so `ckpt rotate-key` can replace it without re-sealing the body, which would reuse the body's
// nonce; an edited wrapped key fails RFC 5649's check, and one from another checkpoint yields a DEK
// that cannot open this body. Shard files are then trusted only through the digests in
// the authenticated body. A plaintext checkpoint (allowed only by policy) has nothing to
// authenticate with: its body is stored in clear, and its digests detect accidents, not attackers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/crypto/data_key.h"
#include "checkpoint/format/shard_record.h"

namespace albion::checkpoint {

// Version 2 added transposed tensors (SliceRecord::transposed); version 1 checkpoints still read.
inline constexpr const char* kCheckpointFormat = "albion-checkpoint/2";
inline constexpr const char* kCheckpointFormatV1 = "albion-checkpoint/1";
inline constexpr const char* kPlaintextCipher = "none";

struct CheckpointHeader {
  std::string format = kCheckpointFormat;
  std::int64_t step = 0;
  std::string checkpoint_id;               // 32 hex characters, random per checkpoint
  std::string created;                     // UTC, ISO 8601
  std::string cipher = kPlaintextCipher;   // "AES-256-GCM" or "none"
  std::string key_id;                      // the KEK's fingerprint; empty for plaintext
  std::vector<std::uint8_t> wrapped_key;   // the DEK under the KEK (RFC 5649)
  std::uint64_t chunk_bytes = 0;
  bool encrypted() const { return cipher != kPlaintextCipher; }
};

struct CheckpointManifest {
  CheckpointHeader header;
  int world_size = 1;
  int data_parallel_size = 1;
  std::string recipe;      // the resolved recipe, INI
  std::string state_json;  // the trainer's own state (a JSON object), opaque to checkpoint/
  std::vector<ShardRecord> shards;
};

// manifest.json's text; the body sealed under `key`, or in clear when `key` is null.
std::string serialize_manifest(const CheckpointManifest& manifest, const DataKey* key);

// The header alone, without a key (`albion ckpt inspect`, and to learn the key id).
// IntegrityError naming `what` for anything malformed.
CheckpointHeader parse_manifest_header(std::string_view text, const std::string& what);

// Everything, after authenticating the body with `key` (Note [Manifest authentication]);
// `key` must be null exactly when the header says plaintext. IntegrityError naming `what`.
CheckpointManifest parse_manifest(std::string_view text, const DataKey* key, const std::string& what);

// One shard record as JSON text, for sending it from its rank to rank 0; the parser validates
// like parse_manifest (IntegrityError naming `what`).
std::string shard_record_json(const ShardRecord& record);
ShardRecord parse_shard_record_json(std::string_view text, const std::string& what);

// The same manifest with its key wrapping replaced (`ckpt rotate-key`); the sealed body is kept
// byte for byte.
std::string rewrap_manifest(std::string_view text, const std::string& key_id,
                            const std::vector<std::uint8_t>& wrapped_key, const std::string& what);

}  // namespace albion::checkpoint
