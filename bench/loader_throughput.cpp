// File: bench/loader_throughput.cpp
// Token loader throughput from the page cache: writes a synthetic dataset (random token ids in
// shards of 16M tokens), reads it once to warm the cache, then times `steps` batches through
// TokenLoader (digest checks at open excluded). Prints tokens/s per rank.
//
//   build/bench/loader_throughput [total_tokens=100000000] [seq_len=1024] [batch=16] [steps=400]
//                                 [plain|encrypted]
// `encrypted` seals the shards and manifest under a fresh key file (dataset_encryption.h), so the
// loader decrypts chunks as windows need them.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>

#include "checkpoint/keys/key_file.h"
#include "checkpoint/keys/key_provider.h"
#include "runtime/base/remove_tree.h"
#include "runtime/data/dataset_encryption.h"
#include "runtime/data/dataset_manifest.h"
#include "runtime/data/file_digest.h"
#include "runtime/data/token_loader.h"
#include "runtime/data/token_shard.h"

using namespace albion::data;

int main(int argc, char** argv) {
  const std::uint64_t total = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100'000'000;
  const std::int64_t seq_len = argc > 2 ? std::atoll(argv[2]) : 1024;
  const std::int64_t batch = argc > 3 ? std::atoll(argv[3]) : 16;
  const int steps = argc > 4 ? std::atoi(argv[4]) : 400;
  const bool encrypted = argc > 5 && std::string(argv[5]) == "encrypted";
  const std::uint64_t vocab = 50257;
  const std::uint64_t per_shard = 16'000'000;

  const auto dir = std::filesystem::temp_directory_path() / ("albion-loader-bench-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string key_spec = "file:" + (dir / "kek").string();
  std::optional<DatasetKey> key;
  std::optional<albion::checkpoint::ChunkCipher> cipher;
  if (encrypted) {
    albion::checkpoint::generate_key_file(dir / "kek", albion::checkpoint::KeyFileOverwrite::kRefuse);
    key = DatasetKey::create(*albion::checkpoint::open_key_provider(key_spec), kDefaultChunkTokens);
    cipher.emplace(key->cipher());
  }
  DatasetManifest manifest;
  manifest.tokenizer_spec = "synthetic";
  manifest.tokenizer_hash = "synthetic";
  manifest.tokenizer_description = "synthetic random ids";
  manifest.vocab_size = vocab;
  manifest.token_width = token_width_for_vocab(vocab);
  manifest.input_format = "text";
  std::mt19937_64 random(1);
  SplitEntry& train = manifest.splits["train"];
  manifest.splits["val"] = {};
  for (std::uint64_t start = 0; start < total; start += per_shard) {
    const std::uint64_t n = std::min(per_shard, total - start);
    std::vector<std::uint32_t> tokens(n);
    for (auto& t : tokens) t = static_cast<std::uint32_t>(random() % vocab);
    std::vector<std::uint64_t> offsets = {0, n};
    ShardEntry entry;
    char name[32];
    std::snprintf(name, sizeof(name), "train-%05zu.h5", train.shards.size());
    entry.file = name;
    entry.file_index = static_cast<std::uint32_t>(train.shards.size());
    ShardSealing sealing{cipher ? &*cipher : nullptr, entry.file_index, kDefaultChunkTokens};
    write_token_shard((dir / name).string(), manifest.token_width, tokens, offsets, {},
                      {"train", manifest.tokenizer_hash, vocab, "[]"}, cipher ? &sealing : nullptr);
    entry.tokens = n;
    entry.documents = 1;
    entry.sha256 = sha256_file((dir / name).string());
    train.tokens += n;
    train.documents += 1;
    train.shards.push_back(entry);
  }
  manifest.encrypted = encrypted;
  std::ofstream(dir / kManifestFile) << (key ? sealed_manifest_json(manifest, *key) : manifest_to_json(manifest));

  LoaderOptions options;
  options.directory = dir.string();
  options.seq_len = seq_len;
  options.batch_size = batch;
  options.seed = 7;
  options.prefetch = 4;
  if (encrypted) options.key_spec = key_spec;
  TokenLoader loader(options);
  for (int i = 0; i < 20; ++i) loader.next();  // warm-up: thread start, page faults
  const auto start = std::chrono::steady_clock::now();
  std::int64_t checksum = 0;
  for (int i = 0; i < steps; ++i) checksum += loader.next().inputs[0][0].item<std::int64_t>();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double tokens = static_cast<double>(steps) * static_cast<double>(batch * seq_len);
  std::printf("loader (%s): %.1f M tokens/s (%d batches of %lldx%lld from %.0f M tokens, random windows, "
              "checksum %lld)\n",
              encrypted ? "encrypted" : "plain", tokens / seconds / 1e6, steps, static_cast<long long>(batch),
              static_cast<long long>(seq_len), total / 1e6, static_cast<long long>(checksum));
  albion::remove_tree(dir.string());
  return 0;
}
