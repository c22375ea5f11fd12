// File: runtime/data/prepare.cpp
#include "runtime/data/prepare.h"

#include <algorithm>
#include <cstdio>
#include <chrono>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "runtime/base/check.h"
#include "runtime/base/progress.h"
#include "runtime/base/staging_directory.h"
#include "checkpoint/keys/key_provider.h"
#include "runtime/data/chat_record.h"
#include "runtime/data/dataset_encryption.h"
#include "runtime/data/dataset_manifest.h"
#include "runtime/data/file_digest.h"
#include "runtime/data/token_shard.h"
#include "runtime/tokenizers/chat_template.h"
#include "runtime/tokenizers/tokenizer.h"

namespace albion::data {
namespace {

namespace fs = std::filesystem;
using tokenizers::TokenId;
using tokenizers::Tokenizer;

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  ALBION_CHECK_AS(UsageError, !inputs.empty(), "data prepare: no --input given");
  std::vector<std::string> files;
  for (const std::string& input : inputs) {
    std::error_code error;
    if (fs::is_directory(input, error)) {
      std::vector<std::string> found;
      for (const auto& entry : fs::recursive_directory_iterator(input)) {
        if (entry.is_regular_file()) found.push_back(entry.path().string());
      }
      std::sort(found.begin(), found.end());
      ALBION_CHECK_AS(UsageError, !found.empty(), input, ": directory has no files");
      files.insert(files.end(), found.begin(), found.end());
    } else {
      ALBION_CHECK_AS(UsageError, fs::is_regular_file(input, error), input, ": no such file");
      files.push_back(input);
    }
  }
  return files;
}

// 64-bit FNV-1a over the document, mixed with the seed (splitmix64 finaliser): a stable function
// of the content alone, so a duplicated document always lands in the same split.
double split_draw(std::string_view content, std::uint64_t seed) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : content) h = (h ^ c) * 1099511628211ull;
  h ^= seed + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

struct TokenizedDocument {
  std::vector<TokenId> tokens;
  std::vector<std::uint8_t> loss_mask;  // empty unless the format produces one
  bool validation = false;
};

struct TokenizedBatch {
  std::vector<TokenizedDocument> documents;
  std::uint64_t skipped = 0;
};

class BatchTokenizer {
 public:
  BatchTokenizer(const Tokenizer& tokenizer, const PrepareOptions& options,
                 const std::vector<std::string>& files)
      : tokenizer_(tokenizer),
        options_(options),
        files_(files),
        chat_template_(parse_record_template(options.chat_template)) {
    if (options.format == InputFormat::kChat) require_template_tokens(tokenizer, chat_template_);
  }

  TokenizedBatch operator()(const std::vector<RawDocument>& batch) const {
    TokenizedBatch out;
    out.documents.reserve(batch.size());
    for (const RawDocument& raw : batch) {
      try {
        out.documents.push_back(tokenize(raw));
      } catch (const UsageError& e) {
        if (!options_.skip_bad_records) throw UsageError(str_cat(where(raw), ": ", e.what()));
        ++out.skipped;
      }
    }
    return out;
  }

 private:
  std::string where(const RawDocument& raw) const {
    return raw.line > 0 ? str_cat(files_[raw.source], ":", raw.line)
                        : str_cat(files_[raw.source], " (document ", raw.index + 1, ")");
  }

  TokenizedDocument tokenize(const RawDocument& raw) const {
    TokenizedDocument document;
    if (options_.format == InputFormat::kChat) {
      tokenizers::MaskedTokens rendered = render_chat_record(tokenizer_, chat_template_, raw.content);
      document.tokens = std::move(rendered.ids);
      document.loss_mask = std::move(rendered.loss_mask);
    } else {
      document.tokens = tokenizer_.encode(raw.content, tokenizers::SpecialTokens::kAsText);
      if (auto end = tokenizer_.end_of_text()) document.tokens.push_back(*end);
    }
    document.validation = split_draw(raw.content, options_.seed) < options_.val_fraction;
    return document;
  }

  const Tokenizer& tokenizer_;
  const PrepareOptions& options_;
  const std::vector<std::string>& files_;
  std::optional<tokenizers::ChatTemplate> chat_template_;  // none: plain prompt/completion
};

// Accumulates one split's documents and writes a shard whenever it passes shard_tokens.
// Shards of all splits draw file indices from one counter: each index is used once per dataset
// key (Note [Nonce uniqueness] in checkpoint/crypto/chunk_cipher.h).
struct ShardOutput {
  std::string directory;
  TokenWidth width;
  std::uint64_t shard_tokens;
  checkpoint::ChunkCipher* cipher = nullptr;  // null: plaintext
  std::uint64_t chunk_tokens = 0;
  std::uint32_t next_file_index = 0;
};

class SplitWriter {
 public:
  SplitWriter(std::string split, ShardOutput& output, ShardAttributes attributes)
      : split_(std::move(split)), output_(output), attributes_(std::move(attributes)) {
    attributes_.split = split_;
  }

  void add(const TokenizedDocument& document, bool with_mask) {
    tokens_.insert(tokens_.end(), document.tokens.begin(), document.tokens.end());
    if (with_mask) loss_mask_.insert(loss_mask_.end(), document.loss_mask.begin(), document.loss_mask.end());
    offsets_.push_back(tokens_.size());
    if (tokens_.size() >= output_.shard_tokens) flush();
  }

  void flush() {
    if (offsets_.size() <= 1) return;
    ShardEntry entry;
    char name[64];
    std::snprintf(name, sizeof(name), "%s-%05zu.h5", split_.c_str(), split_entry_.shards.size());
    entry.file = name;
    const std::string path = (fs::path(output_.directory) / entry.file).string();
    entry.file_index = output_.next_file_index++;
    ShardSealing sealing{output_.cipher, entry.file_index, output_.chunk_tokens};
    write_token_shard(path, output_.width, tokens_, offsets_, loss_mask_, attributes_,
                      output_.cipher != nullptr ? &sealing : nullptr);
    entry.tokens = tokens_.size();
    entry.documents = offsets_.size() - 1;
    entry.sha256 = sha256_file(path);
    split_entry_.tokens += entry.tokens;
    split_entry_.documents += entry.documents;
    split_entry_.shards.push_back(std::move(entry));
    tokens_.clear();
    loss_mask_.clear();
    offsets_.assign(1, 0);
  }

  const SplitEntry& entry() const { return split_entry_; }

 private:
  std::string split_;
  ShardOutput& output_;
  ShardAttributes attributes_;
  std::vector<TokenId> tokens_;
  std::vector<std::uint64_t> offsets_{0};
  std::vector<std::uint8_t> loss_mask_;
  SplitEntry split_entry_;
};

std::string utc_now() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace

PrepareSummary prepare_dataset(const PrepareOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  ALBION_CHECK_AS(UsageError, options.val_fraction >= 0 && options.val_fraction < 1,
                  "--val-fraction must be in [0, 1), got ", options.val_fraction);
  ALBION_CHECK_AS(UsageError, options.shard_tokens > 0, "--shard-tokens must be positive");
  ALBION_CHECK_AS(UsageError, !options.output.empty(), "data prepare: --output is required");
  const std::vector<std::string> files = expand_inputs(options.inputs);
  // --overwrite replaces the output directory whole: it must not hold the inputs. Checked before
  // any input is hashed, so the refusal costs nothing.
  const fs::path output_dir = fs::weakly_canonical(fs::absolute(options.output));
  for (const std::string& file : files) {
    const fs::path inside = fs::weakly_canonical(fs::absolute(file)).lexically_relative(output_dir);
    ALBION_CHECK_AS(UsageError, inside.empty() || *inside.begin() == "..", "data prepare: input ", file,
                    " lies inside the output directory ", options.output, "; choose another --output");
  }
  std::unique_ptr<Tokenizer> tokenizer = tokenizers::load_tokenizer(options.tokenizer_spec);
  // Open the key before any work: a wrong spec fails fast, and nothing is written unencrypted.
  std::optional<DatasetKey> dataset_key;
  if (!options.encrypt_key_spec.empty()) {
    dataset_key = DatasetKey::create(*checkpoint::open_key_provider(options.encrypt_key_spec),
                                     kDefaultChunkTokens);
  }

  DatasetManifest manifest;
  std::uint64_t total_bytes = 0;
  for (const std::string& file : files) {
    SourceFile source{file, sha256_file(file), static_cast<std::uint64_t>(fs::file_size(file))};
    total_bytes += source.bytes;
    manifest.sources.push_back(std::move(source));
  }
  ALBION_CHECK_AS(UsageError, total_bytes > 0, "data prepare: the input files are empty");

  StagingDirectory staging(options.output, options.overwrite ? Overwrite::kReplace : Overwrite::kRefuse);
  manifest.tokenizer_spec = options.tokenizer_spec;
  manifest.tokenizer_hash = tokenizer->content_hash();
  manifest.tokenizer_description = tokenizer->description();
  manifest.vocab_size = tokenizer->vocab_size();
  manifest.end_of_text = tokenizer->end_of_text();
  manifest.token_width = token_width_for_vocab(manifest.vocab_size);
  manifest.has_loss_mask = options.format == InputFormat::kChat;
  manifest.input_format = input_format_name(options.format);
  if (options.format == InputFormat::kChat) manifest.chat_template = options.chat_template;
  manifest.val_fraction = options.val_fraction;
  manifest.seed = options.seed;
  manifest.created_utc = utc_now();

  nlohmann::json sources = nlohmann::json::array();
  for (const SourceFile& s : manifest.sources) sources.push_back({{"path", s.path}, {"sha256", s.sha256}});
  ShardAttributes attributes{"", manifest.tokenizer_hash, manifest.vocab_size, sources.dump()};
  std::optional<checkpoint::ChunkCipher> cipher;
  if (dataset_key) cipher.emplace(dataset_key->cipher());
  ShardOutput output{staging.path(), manifest.token_width, options.shard_tokens,
                     cipher ? &*cipher : nullptr, kDefaultChunkTokens, 0};
  SplitWriter train("train", output, attributes);
  SplitWriter val("val", output, attributes);

  ReaderOptions reader_options;
  reader_options.format = options.format;
  reader_options.text_document_bytes = options.text_document_bytes;
  reader_options.skip_bad_records = options.skip_bad_records;
  DocumentReader reader(files, reader_options);
  BatchTokenizer tokenize(*tokenizer, options, files);
  const int threads = options.threads > 0 ? options.threads
                                          : std::max(1u, std::thread::hardware_concurrency());
  ProgressBar progress("prepare", static_cast<double>(total_bytes), "MB", 1e6, options.show_progress);

  // Batches are tokenized concurrently (up to 2 per thread in flight) and consumed in order.
  PrepareSummary summary;
  std::deque<std::future<TokenizedBatch>> in_flight;
  std::uint64_t bytes_submitted = 0;
  auto consume_front = [&] {
    TokenizedBatch batch = in_flight.front().get();
    in_flight.pop_front();
    summary.skipped_records += batch.skipped;
    for (const TokenizedDocument& document : batch.documents) {
      (document.validation ? val : train).add(document, manifest.has_loss_mask);
    }
  };
  while (true) {
    std::vector<RawDocument> batch = reader.next_batch();
    if (batch.empty()) break;
    progress.advance(static_cast<double>(reader.bytes_read() - bytes_submitted));
    bytes_submitted = reader.bytes_read();
    in_flight.push_back(std::async(std::launch::async, [&tokenize, batch = std::move(batch)] {
      return tokenize(batch);
    }));
    if (in_flight.size() >= static_cast<std::size_t>(2 * threads)) consume_front();
  }
  while (!in_flight.empty()) consume_front();
  train.flush();
  val.flush();
  progress.finish();
  summary.skipped_records += reader.skipped_records();

  ALBION_CHECK_AS(UsageError, train.entry().tokens > 0, "data prepare: no training tokens ",
                  "(every record was empty, skipped, or went to validation)");
  manifest.splits["train"] = train.entry();
  manifest.splits["val"] = val.entry();
  manifest.encrypted = dataset_key.has_value();
  {
    std::ofstream out(fs::path(staging.path()) / kManifestFile);
    out << (dataset_key ? sealed_manifest_json(manifest, *dataset_key) : manifest_to_json(manifest));
    ALBION_CHECK_AS(SystemError, out.good(), staging.path(), ": cannot write ", kManifestFile);
  }
  staging.commit();

  summary.input_bytes = total_bytes;
  summary.train_tokens = train.entry().tokens;
  summary.train_documents = train.entry().documents;
  summary.val_tokens = val.entry().tokens;
  summary.val_documents = val.entry().documents;
  summary.shards = train.entry().shards.size() + val.entry().shards.size();
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace albion::data
