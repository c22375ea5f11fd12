// File: runtime/data/dataset_manifest.cpp
#include "runtime/data/dataset_manifest.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

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

DatasetManifest read_manifest(const std::string& directory) {
  namespace fs = std::filesystem;
  ALBION_CHECK_AS(UsageError, fs::is_directory(directory), directory,
                  ": no such dataset directory");
  const std::string path = (fs::path(directory) / kManifestFile).string();
  ALBION_CHECK_AS(UsageError, fs::exists(path), directory,
                  ": not a prepared dataset (no dataset.json; an interrupted `albion data prepare`?)");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  DatasetManifest m;
  try {
    json root = json::parse(text.str());
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
        ShardEntry e{shard.at("file"), shard.at("tokens"), shard.at("documents"), shard.at("sha256")};
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
  } catch (const json::exception& e) {
    throw IntegrityError(str_cat(path, ": malformed manifest: ", e.what()));
  }
  return m;
}

}  // namespace albion::data
