// File: runtime/data/dataset_manifest.cpp
#include "runtime/data/dataset_manifest.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "checkpoint/crypto/hex.h"
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
  return root.dump(2) + "\n";
}

namespace {

constexpr const char* kManifestTensor = "manifest";

json read_manifest_file(const std::string& directory, std::string* path_out) {
  namespace fs = std::filesystem;
  ALBION_CHECK_AS(UsageError, fs::is_directory(directory), directory,
                  ": no such dataset directory");
  const std::string path = (fs::path(directory) / kManifestFile).string();
  ALBION_CHECK_AS(UsageError, fs::exists(path), directory,
                  ": not a prepared dataset (no dataset.json; an interrupted `albion data prepare`?)");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  *path_out = path;
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    throw IntegrityError(str_cat(path, ": malformed manifest: ", e.what()));
  }
}

std::vector<std::uint8_t> bytes_from_hex(const std::string& hex, const std::string& path, const char* what) {
  std::optional<checkpoint::SecretBytes> bytes = checkpoint::secret_from_hex(hex);
  ALBION_CHECK_AS(IntegrityError, bytes.has_value(), path, ": ", what, " is not hex");
  return std::vector<std::uint8_t>(bytes->view().begin(), bytes->view().end());
}

EncryptionHeader parse_encryption_header(const json& root, const std::string& path) {
  const json& e = root.at("encryption");
  EncryptionHeader header;
  header.cipher = e.at("cipher");
  header.key_id = e.at("key_id");
  header.wrapped_key = bytes_from_hex(e.at("wrapped_key"), path, "wrapped_key");
  header.dataset_id = e.at("dataset_id");
  header.chunk_tokens = e.at("chunk_tokens");
  ALBION_CHECK_AS(IntegrityError, header.chunk_tokens > 0 && header.chunk_tokens <= (1u << 30), path,
                  ": implausible chunk_tokens");
  return header;
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
  json root = read_manifest_file(directory, &path);
  try {
    if (!root.value("encrypted", false)) return std::nullopt;
    return parse_encryption_header(root, path);
  } catch (const json::exception& e) {
    throw IntegrityError(str_cat(path, ": malformed manifest: ", e.what()));
  }
}

DatasetManifest read_manifest(const std::string& directory, const checkpoint::KeyProvider* key) {
  std::string path;
  json root = read_manifest_file(directory, &path);
  std::optional<EncryptionHeader> header;
  try {
    if (root.value("encrypted", false) && root.contains("sealed_manifest")) {
      header = parse_encryption_header(root, path);
      ALBION_CHECK_AS(UsageError, key != nullptr, directory,
                      ": the dataset is encrypted (key id ", header->key_id, "); give its key");
      DatasetKey dataset_key = DatasetKey::open(*key, *header);
      const std::vector<std::uint8_t> sealed = bytes_from_hex(root.at("sealed_manifest"), path, "sealed_manifest");
      ALBION_CHECK_AS(IntegrityError, sealed.size() >= checkpoint::kChunkTagBytes, path, ": sealed manifest too short");
      checkpoint::ChunkCipher cipher = dataset_key.cipher();
      std::vector<std::uint8_t> inner = cipher.open({kManifestFile, kManifestFileIndex, kManifestTensor, 0}, sealed);
      root = json::parse(inner.begin(), inner.end());
      ALBION_CHECK_AS(IntegrityError, root.at("encrypted") == true, path, ": sealed manifest says plaintext");
    }
  } catch (const json::exception& e) {
    throw IntegrityError(str_cat(path, ": malformed manifest: ", e.what()));
  }
  // A key says the data is meant to be private: a plaintext dataset in its place (swapped, or
  // prepared without --encrypt) is refused rather than trained on.
  ALBION_CHECK_AS(IntegrityError, key == nullptr || header.has_value(), path,
                  ": the dataset is not encrypted, but a key was given for it; refusing plaintext where "
                  "encrypted data is expected");
  DatasetManifest m;
  m.encryption = header;
  try {
    ALBION_CHECK_AS(IntegrityError, root.at("format") == kFormat &&
                                        root.at("format_version") == kFormatVersion,
                    path, ": not an albion token dataset of format version ", kFormatVersion);
    const json& tokenizer = root.at("tokenizer");
    m.tokenizer_spec = tokenizer.at("spec");
    m.tokenizer_hash = tokenizer.at("hash");
    m.tokenizer_description = tokenizer.at("description");
    m.vocab_size = tokenizer.at("vocab_size");
    if (!tokenizer.at("end_of_text").is_null()) m.end_of_text = tokenizer.at("end_of_text").get<std::uint32_t>();
    const std::string dtype = root.at("token_dtype");
    ALBION_CHECK_AS(IntegrityError, dtype == "uint16" || dtype == "uint32", path,
                    ": unknown token_dtype '", dtype, "'");
    m.token_width = dtype == "uint16" ? TokenWidth::kUint16 : TokenWidth::kUint32;
    ALBION_CHECK_AS(IntegrityError, m.vocab_size > 0 && m.token_width == token_width_for_vocab(m.vocab_size),
                    path, ": token_dtype ", dtype, " does not match vocab size ", m.vocab_size);
    m.has_loss_mask = root.at("has_loss_mask");
    m.encrypted = root.at("encrypted");
    m.input_format = root.at("input_format");
    m.val_fraction = root.at("val_fraction");
    m.seed = root.at("seed");
    m.created_utc = root.at("created_utc");
    for (const json& s : root.at("sources")) {
      m.sources.push_back({s.at("path"), s.at("sha256"), s.at("bytes")});
    }
    for (const auto& [name, split] : root.at("splits").items()) {
      SplitEntry entry;
      entry.tokens = split.at("tokens");
      entry.documents = split.at("documents");
      std::uint64_t tokens = 0;
      std::uint64_t documents = 0;
      for (const json& shard : split.at("shards")) {
        ShardEntry e{shard.at("file"), shard.at("file_index"), shard.at("tokens"), shard.at("documents"),
                     shard.at("sha256")};
        // Shard names are plain file names inside the dataset: nothing may point elsewhere.
        ALBION_CHECK_AS(IntegrityError, !e.file.empty() && e.file.find('/') == std::string::npos &&
                                            e.file != "." && e.file != "..",
                        path, ": shard name '", e.file, "' is not a plain file name");
        tokens += e.tokens;
        documents += e.documents;
        entry.shards.push_back(std::move(e));
      }
      ALBION_CHECK_AS(IntegrityError, tokens == entry.tokens && documents == entry.documents, path,
                      ": split '", name, "' totals disagree with its shards");
      m.splits[name] = std::move(entry);
    }
    std::set<std::uint32_t> file_indices;
    std::size_t shard_count = 0;
    for (const auto& [name, split] : m.splits) {
      for (const ShardEntry& shard : split.shards) {
        file_indices.insert(shard.file_index);
        ++shard_count;
      }
    }
    ALBION_CHECK_AS(IntegrityError, file_indices.size() == shard_count && !file_indices.count(kManifestFileIndex),
                    path, ": shard file indices are not unique");
    ALBION_CHECK_AS(IntegrityError, m.encrypted == m.encryption.has_value(), path,
                    ": 'encrypted' disagrees with the file's structure");
  } catch (const json::exception& e) {
    throw IntegrityError(str_cat(path, ": malformed manifest: ", e.what()));
  }
  return m;
}

}  // namespace albion::data
