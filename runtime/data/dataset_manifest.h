// File: runtime/data/dataset_manifest.h
// dataset.json: the description of a prepared token dataset, written last by `albion data prepare`
// (its presence marks the dataset complete) and read first by the loader and `data inspect`.
//
//   { "format": "albion-token-dataset", "format_version": 1,
//     "tokenizer": {"spec", "hash", "vocab_size", "description", "end_of_text"},
//     "token_dtype": "uint16", "has_loss_mask": false, "encrypted": false,
//     "input_format": "chat", "chat_template": "llama3" (chat datasets only),
//     "val_fraction": 0.1, "seed": 1234, "created_utc": "...",
//     "sources": [{"path", "sha256", "bytes"}],
//     "splits": {"train": {"tokens", "documents", "shards": [{"file", "tokens", "documents", "sha256"}]},
//                "val": {...}} }
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/data/dataset_encryption.h"
#include "runtime/data/token_shard.h"

namespace albion::checkpoint {
class KeyProvider;
}

namespace albion::data {

inline constexpr const char* kManifestFile = "dataset.json";

struct SourceFile {
  std::string path;
  std::string sha256;
  std::uint64_t bytes = 0;
};

struct ShardEntry {
  std::string file;  // relative to the dataset directory
  std::uint32_t file_index = 0;  // unique in the dataset (the nonce space of sealed shards)
  std::uint64_t tokens = 0;
  std::uint64_t documents = 0;
  std::string sha256;
};

struct SplitEntry {
  std::uint64_t tokens = 0;
  std::uint64_t documents = 0;
  std::vector<ShardEntry> shards;
};

struct DatasetManifest {
  std::string tokenizer_spec;
  std::string tokenizer_hash;
  std::string tokenizer_description;
  std::uint64_t vocab_size = 0;
  std::optional<std::uint32_t> end_of_text;
  TokenWidth token_width = TokenWidth::kUint16;
  bool has_loss_mask = false;
  bool encrypted = false;
  std::optional<EncryptionHeader> encryption;  // set when encrypted
  std::string input_format;
  std::string chat_template;  // chat datasets: llama3, llama3.1, chatml, qwen2.5 or none (chat_record.h); else empty
  double val_fraction = 0;
  std::uint64_t seed = 0;
  std::string created_utc;
  std::vector<SourceFile> sources;
  std::map<std::string, SplitEntry> splits;  // "train", "val"
};

std::string manifest_to_json(const DatasetManifest& manifest);

// dataset.json of an encrypted dataset: the public header and the whole manifest sealed under the
// dataset key (dataset_encryption.h).
std::string sealed_manifest_json(const DatasetManifest& manifest, const DatasetKey& key);

// The encryption header of the dataset in `directory`, if it is encrypted (no key needed).
std::optional<EncryptionHeader> read_encryption_header(const std::string& directory);

// Parses and validates dataset.json of `directory`. A missing directory or manifest, or an
// encrypted dataset without `key`, is a UsageError; a malformed or inconsistent manifest, the
// wrong key, or a sealed manifest that fails authentication is an IntegrityError.
DatasetManifest read_manifest(const std::string& directory,
                              const checkpoint::KeyProvider* key = nullptr);

// read_manifest on the text of dataset.json at `path` (named in errors). Every field is checked
// for its type and range, and errors name the field, e.g. "PATH: tokenizer: field 'vocab_size':
// expected a non-negative integer".
DatasetManifest parse_dataset_manifest(std::string_view text, const std::string& path,
                                       const checkpoint::KeyProvider* key = nullptr);

}  // namespace albion::data
