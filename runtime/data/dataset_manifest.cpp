// File: runtime/data/dataset_manifest.cpp
#include "runtime/data/dataset_manifest.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "checkpoint/crypto/hex.h"
#include "checkpoint/format/json_fields.h"
#include "checkpoint/keys/key_provider.h"
#include "runtime/base/check.h"

namespace albion::data {
namespace {

using nlohmann::json;
constexpr const char* kFormat = "albion-token-dataset";
constexpr int kFormatVersion = 1;

}  // namespace

std::string manifest_to_json(const DatasetManifest& m) {
  json tokenizer = {{"spec", m.tokenizer_spec},
                    {"hash", m.tokenizer_hash},
                    {"vocab_size", m.vocab_size},
                    {"description", m.tokenizer_description},
                    {"end_of_text", m.end_of_text ? json(*m.end_of_text) : json(nullptr)}};
  json sources = json::array();
  for (const SourceFile& s : m.sources) {
    sources.push_back({{"path", s.path}, {"sha256", s.sha256}, {"bytes", s.bytes}});
  }
  json splits = json::object();
  for (const auto& [name, split] : m.splits) {
    json shards = json::array();
    for (const ShardEntry& shard : split.shards) {
      shards.push_back({{"file", shard.file},
                        {"file_index", shard.file_index},
                        {"tokens", shard.tokens},
                        {"documents", shard.documents},
                        {"sha256", shard.sha256}});
    }
    splits[name] = {{"tokens", split.tokens}, {"documents", split.documents}, {"shards", shards}};
  }
  json root = {{"format", kFormat},
               {"format_version", kFormatVersion},
               {"tokenizer", tokenizer},
               {"token_dtype", token_width_name(m.token_width)},
               {"has_loss_mask", m.has_loss_mask},
               {"encrypted", m.encrypted},
               {"input_format", m.input_format},
               {"val_fraction", m.val_fraction},
               {"seed", m.seed},
               {"created_utc", m.created_utc},
               {"sources", sources},
               {"splits", splits}};
  if (!m.chat_template.empty()) root["chat_template"] = m.chat_template;
  return root.dump(2) + "\n";
}

namespace {

using checkpoint::JsonFields;
constexpr const char* kManifestTensor = "manifest";

// The text of DIRECTORY/dataset.json, and its path in `path_out`.
std::string read_manifest_text(const std::string& directory, std::string* path_out) {
  namespace fs = std::filesystem;
  std::error_code error;
  ALBION_CHECK_AS(UsageError, fs::is_directory(directory, error), directory, ": no such dataset directory");
  const std::string path = (fs::path(directory) / kManifestFile).string();
  ALBION_CHECK_AS(UsageError, fs::exists(path, error), directory,
                  ": not a prepared dataset (no dataset.json; an interrupted `albion data prepare`?)");
  *path_out = path;
  return checkpoint::read_json_document(path);
}

EncryptionHeader encryption_header_from(const JsonFields& root) {
  const JsonFields e = root.object("encryption");
  EncryptionHeader header;
  header.cipher = e.string("cipher");
  if (header.cipher != checkpoint::kChunkCipherName) e.fail("cipher", "unsupported '" + header.cipher + "'");
  header.key_id = e.string("key_id");
  header.wrapped_key = e.hex_bytes("wrapped_key");
  header.dataset_id = e.string("dataset_id");
  header.chunk_tokens = e.unsigned_integer("chunk_tokens");
  if (header.chunk_tokens == 0 || header.chunk_tokens > (1u << 30)) e.fail("chunk_tokens", "out of range");
  return header;
}

std::uint64_t add_checked(const JsonFields& f, const std::string& key, std::uint64_t a, std::uint64_t b) {
  if (a > UINT64_MAX - b) f.fail(key, "totals overflow");
  return a + b;
}

SplitEntry split_from(const JsonFields& split) {
  SplitEntry entry;
  entry.tokens = split.unsigned_integer("tokens");
  entry.documents = split.unsigned_integer("documents");
  std::uint64_t tokens = 0;
  std::uint64_t documents = 0;
  for (const json& item : split.array("shards")) {
    const JsonFields shard(item, split.what() + " shard");
    ShardEntry e;
    e.file = shard.string("file");
    // Shard names are plain file names inside the dataset: nothing may point elsewhere.
    if (e.file.empty() || e.file.find('/') != std::string::npos || e.file == "." || e.file == "..") {
      shard.fail("file", "'" + e.file + "' is not a plain file name");
    }
    const std::uint64_t file_index = shard.unsigned_integer("file_index");
    if (file_index >= kManifestFileIndex) shard.fail("file_index", "out of range");
    e.file_index = static_cast<std::uint32_t>(file_index);
    e.tokens = shard.unsigned_integer("tokens");
    e.documents = shard.unsigned_integer("documents");
    e.sha256 = shard.hex_string("sha256", 64);
    tokens = add_checked(split, "tokens", tokens, e.tokens);
    documents = add_checked(split, "documents", documents, e.documents);
    entry.shards.push_back(std::move(e));
  }
  if (tokens != entry.tokens || documents != entry.documents) split.fail("", "totals disagree with its shards");
  return entry;
}

// Every field but the encryption header, from a plaintext dataset.json or an opened sealed one.
DatasetManifest manifest_from(const JsonFields& root) {
  if (root.string("format") != kFormat || root.unsigned_integer("format_version") != kFormatVersion) {
    root.fail("", str_cat("not an albion token dataset of format version ", kFormatVersion));
  }
  DatasetManifest m;
  const JsonFields tokenizer = root.object("tokenizer");
  m.tokenizer_spec = tokenizer.string("spec");
  m.tokenizer_hash = tokenizer.string("hash");
  m.tokenizer_description = tokenizer.string("description");
  m.vocab_size = tokenizer.unsigned_integer("vocab_size");
  if (m.vocab_size == 0 || m.vocab_size > (std::uint64_t{1} << 32)) tokenizer.fail("vocab_size", "out of range");
  if (!tokenizer.at("end_of_text").is_null()) {
    const std::uint64_t end_of_text = tokenizer.unsigned_integer("end_of_text");
    if (end_of_text >= m.vocab_size) tokenizer.fail("end_of_text", "is not below vocab_size");
    m.end_of_text = static_cast<std::uint32_t>(end_of_text);
  }
  const std::string dtype = root.string("token_dtype");
  if (dtype != "uint16" && dtype != "uint32") root.fail("token_dtype", "unknown '" + dtype + "'");
  m.token_width = dtype == "uint16" ? TokenWidth::kUint16 : TokenWidth::kUint32;
  if (m.token_width != token_width_for_vocab(m.vocab_size)) {
    root.fail("token_dtype", str_cat(dtype, " does not match vocab size ", m.vocab_size));
  }
  m.has_loss_mask = root.boolean("has_loss_mask");
  m.encrypted = root.boolean("encrypted");
  m.input_format = root.string("input_format");
  // Optional: chat datasets prepared before it was recorded lack it.
  if (root.has("chat_template")) m.chat_template = root.string("chat_template");
  m.val_fraction = root.number("val_fraction");
  if (!(m.val_fraction >= 0 && m.val_fraction < 1)) root.fail("val_fraction", "outside [0, 1)");
  m.seed = root.unsigned_integer("seed");
  m.created_utc = root.string("created_utc");
  for (const json& item : root.array("sources")) {
    const JsonFields source(item, root.what() + " source");
    m.sources.push_back({source.string("path"), source.string("sha256"), source.unsigned_integer("bytes")});
  }
  std::set<std::uint32_t> file_indices;  // the nonce space of sealed shards: each used once
  for (const auto& [name, split] : root.object("splits").value().items()) {
    m.splits[name] = split_from(JsonFields(split, str_cat(root.what(), ": split '", name, "'")));
    for (const ShardEntry& shard : m.splits[name].shards) {
      if (!file_indices.insert(shard.file_index).second) root.fail("splits", "shard file indices are not unique");
    }
  }
  return m;
}

}  // namespace

std::string sealed_manifest_json(const DatasetManifest& manifest, const DatasetKey& key) {
  const EncryptionHeader& header = key.header();
  const std::string inner = manifest_to_json(manifest);
  checkpoint::ChunkCipher cipher = key.cipher();
  std::vector<std::uint8_t> sealed = cipher.seal(
      {kManifestFile, kManifestFileIndex, kManifestTensor, 0},
      {reinterpret_cast<const std::uint8_t*>(inner.data()), inner.size()});
  json root = {{"format", kFormat},
               {"format_version", kFormatVersion},
               {"encrypted", true},
               {"encryption", {{"cipher", header.cipher},
                               {"key_id", header.key_id},
                               {"wrapped_key", checkpoint::to_hex(header.wrapped_key)},
                               {"dataset_id", header.dataset_id},
                               {"chunk_tokens", header.chunk_tokens}}},
               {"sealed_manifest", checkpoint::to_hex(sealed)}};
  return root.dump(2) + "\n";
}

std::optional<EncryptionHeader> read_encryption_header(const std::string& directory) {
  std::string path;
  const std::string text = read_manifest_text(directory, &path);
  const json root = checkpoint::parse_untrusted_json(text, path);
  const JsonFields fields(root, path);
  if (!fields.boolean("encrypted")) return std::nullopt;
  return encryption_header_from(fields);
}

DatasetManifest parse_dataset_manifest(std::string_view text, const std::string& path,
                                       const checkpoint::KeyProvider* key) {
  const json root = checkpoint::parse_untrusted_json(text, path);
  const JsonFields outer(root, path);
  if (!outer.boolean("encrypted")) {
    // A key says the data is meant to be private: a plaintext dataset in its place (swapped, or
    // prepared without --encrypt) is refused rather than trained on.
    ALBION_CHECK_AS(IntegrityError, key == nullptr, path,
                    ": the dataset is not encrypted, but a key was given for it; refusing plaintext where "
                    "encrypted data is expected");
    return manifest_from(outer);
  }
  const EncryptionHeader header = encryption_header_from(outer);
  ALBION_CHECK_AS(UsageError, key != nullptr, std::filesystem::path(path).parent_path().string(),
                  ": the dataset is encrypted (key id ", header.key_id, "); give its key");
  const std::vector<std::uint8_t> sealed = outer.hex_bytes("sealed_manifest");
  ALBION_CHECK_AS(IntegrityError, sealed.size() >= checkpoint::kChunkTagBytes, path, ": sealed manifest too short");
  const DatasetKey dataset_key = DatasetKey::open(*key, header);
  const std::vector<std::uint8_t> opened =
      dataset_key.cipher().open({kManifestFile, kManifestFileIndex, kManifestTensor, 0}, sealed);
  const json inner_root = checkpoint::parse_untrusted_json(
      std::string_view(reinterpret_cast<const char*>(opened.data()), opened.size()), path + " (sealed manifest)");
  const JsonFields inner(inner_root, path + " (sealed manifest)");
  if (!inner.boolean("encrypted")) inner.fail("encrypted", "the sealed manifest says plaintext");
  DatasetManifest m = manifest_from(inner);
  m.encryption = header;
  return m;
}

DatasetManifest read_manifest(const std::string& directory, const checkpoint::KeyProvider* key) {
  std::string path;
  const std::string text = read_manifest_text(directory, &path);
  return parse_dataset_manifest(text, path, key);
}

}  // namespace albion::data
