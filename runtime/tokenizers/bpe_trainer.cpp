// File: runtime/tokenizers/bpe_trainer.cpp
// BPE training with incremental pair counts. Words are counted once; each distinct word is a
// symbol sequence with a multiplicity. pair_counts holds the current count of every adjacent
// pair, `where` the words a pair may occur in, and a max-heap the candidates. A merge touches only
// the words that contain its pair, subtracting the word's old pairs and adding its new ones, so a
// merge costs O(occurrences) instead of a pass over the corpus. Heap entries are lazy: an entry
// whose count no longer matches is re-pushed with the current count when popped, and every pair
// whose count grows gets a fresh entry. Ties go to the smaller (left, right) ids, so training is
// deterministic.
#include "runtime/tokenizers/bpe_trainer.h"

#include <algorithm>
#include <fstream>
#include <queue>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "runtime/base/check.h"
#include "runtime/tokenizers/bpe_tokenizer.h"
#include "runtime/tokenizers/byte_level.h"
#include "runtime/tokenizers/utf8.h"

namespace albion::tokenizers {
namespace {

std::uint64_t pair_key(TokenId left, TokenId right) {
  return (std::uint64_t{left} << 32) | right;
}

struct Candidate {
  std::int64_t count;
  std::uint64_t key;
  // priority_queue pops the largest: higher count first, then the smaller key.
  bool operator<(const Candidate& o) const {
    return count != o.count ? count < o.count : key > o.key;
  }
};

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerOptions options)
    : options_(std::move(options)), pre_tokenizer_({options_.pattern}, "BPE trainer") {
  ALBION_CHECK_AS(UsageError, options_.vocab_size >= 256 + options_.special_tokens.size(),
                  "BPE trainer: vocab size ", options_.vocab_size,
                  " is smaller than 256 bytes plus ", options_.special_tokens.size(),
                  " special tokens");
  for (const auto& s : options_.special_tokens) {
    ALBION_CHECK_AS(UsageError, !s.empty(), "BPE trainer: empty special token");
    require_valid_utf8(s, "BPE trainer special token");
  }
}

void BpeTrainer::add_text(std::string_view text) {
  require_valid_utf8(text, "BPE trainer input");
  pre_tokenizer_.split(text, [&](std::string_view word) {
    auto it = word_counts_.find(word);
    if (it == word_counts_.end()) it = word_counts_.emplace(std::string(word), 0).first;
    ++it->second;
  });
}

TrainedBpe BpeTrainer::train() const {
  TrainedBpe out;
  out.pattern = options_.pattern;
  for (unsigned b = 0; b < 256; ++b) out.vocab.emplace_back(1, static_cast<char>(b));
  const std::size_t bpe_vocab_size = options_.vocab_size - options_.special_tokens.size();

  struct Word {
    std::vector<TokenId> symbols;
    std::int64_t count;
    std::size_t stamp = ~std::size_t{0};  // the last merge that visited this word
  };
  std::vector<Word> words;
  words.reserve(word_counts_.size());
  // Sorted so training does not depend on hash-map iteration order.
  std::vector<std::pair<std::string_view, std::uint64_t>> sorted(word_counts_.begin(),
                                                                 word_counts_.end());
  std::sort(sorted.begin(), sorted.end());
  for (const auto& [w, c] : sorted) {
    if (w.size() < 2) continue;  // a single byte has no pair to merge
    Word word;
    for (char ch : w) word.symbols.push_back(static_cast<unsigned char>(ch));
    word.count = static_cast<std::int64_t>(c);
    words.push_back(std::move(word));
  }

  std::unordered_map<std::uint64_t, std::int64_t> pair_counts;
  std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> where;
  for (std::uint32_t i = 0; i < words.size(); ++i) {
    const auto& s = words[i].symbols;
    for (std::size_t k = 0; k + 1 < s.size(); ++k) {
      const auto key = pair_key(s[k], s[k + 1]);
      pair_counts[key] += words[i].count;
      auto& list = where[key];
      if (list.empty() || list.back() != i) list.push_back(i);
    }
  }
  std::priority_queue<Candidate> heap;
  for (const auto& [key, count] : pair_counts) heap.push({count, key});

  std::unordered_set<std::uint64_t> grown;
  std::unordered_map<std::string, TokenId> ids_by_bytes;
  for (TokenId b = 0; b < 256; ++b) ids_by_bytes.emplace(out.vocab[b], b);
  while (out.vocab.size() < bpe_vocab_size && !heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const auto current = pair_counts.find(top.key);
    const std::int64_t count = current == pair_counts.end() ? 0 : current->second;
    if (count != top.count) {
      if (count > 0) heap.push({count, top.key});
      continue;
    }
    if (count <= 0) continue;
    if (count < static_cast<std::int64_t>(options_.min_frequency)) break;

    const auto left = static_cast<TokenId>(top.key >> 32);
    const auto right = static_cast<TokenId>(top.key & 0xFFFFFFFFu);
    // Two merge paths can spell the same bytes ("ab"+"c", "a"+"bc"): reuse the token, as Hugging
    // Face does, so the vocabulary has one id per string.
    std::string bytes = out.vocab[left] + out.vocab[right];
    auto [found, is_new] = ids_by_bytes.try_emplace(bytes, static_cast<TokenId>(out.vocab.size()));
    const TokenId merged = found->second;
    if (is_new) out.vocab.push_back(std::move(bytes));
    out.merges.push_back({left, right, merged});

    const std::size_t stamp = out.merges.size();
    grown.clear();
    const std::vector<std::uint32_t> candidates = std::move(where[top.key]);
    where.erase(top.key);
    for (std::uint32_t wi : candidates) {
      Word& word = words[wi];
      if (word.stamp == stamp) continue;
      word.stamp = stamp;
      auto& s = word.symbols;
      bool present = false;
      for (std::size_t k = 0; k + 1 < s.size() && !present; ++k) {
        present = s[k] == left && s[k + 1] == right;
      }
      if (!present) continue;
      for (std::size_t k = 0; k + 1 < s.size(); ++k) {
        pair_counts[pair_key(s[k], s[k + 1])] -= word.count;
      }
      std::size_t w = 0;
      for (std::size_t k = 0; k < s.size(); ++k) {
        if (k + 1 < s.size() && s[k] == left && s[k + 1] == right) {
          s[w++] = merged;
          ++k;
        } else {
          s[w++] = s[k];
        }
      }
      s.resize(w);
      for (std::size_t k = 0; k + 1 < s.size(); ++k) {
        const auto key = pair_key(s[k], s[k + 1]);
        pair_counts[key] += word.count;
        if (s[k] == merged || s[k + 1] == merged) {
          grown.insert(key);
          auto& list = where[key];
          if (list.empty() || list.back() != wi) list.push_back(wi);
        }
      }
    }
    pair_counts.erase(top.key);
    // Pairs the merge created gained count; the others only lost some (handled lazily on pop).
    for (const auto key : grown) heap.push({pair_counts[key], key});
  }

  auto next_id = static_cast<TokenId>(out.vocab.size());
  for (const auto& s : options_.special_tokens) out.special_tokens.push_back({s, next_id++});
  return out;
}

std::string to_tokenizer_json(const TrainedBpe& bpe) {
  using nlohmann::json;
  json vocab = json::object();
  for (TokenId id = 0; id < bpe.vocab.size(); ++id) vocab[bytes_to_byte_level(bpe.vocab[id])] = id;
  json merges = json::array();
  for (const auto& m : bpe.merges) {
    merges.push_back(bytes_to_byte_level(bpe.vocab[m.left]) + " " +
                     bytes_to_byte_level(bpe.vocab[m.right]));
  }
  json added = json::array();
  for (const auto& s : bpe.special_tokens) {
    added.push_back({{"id", s.id}, {"content", s.text}, {"single_word", false},
                     {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                     {"special", true}});
  }
  json pre;
  if (bpe.pattern == kGpt2Pattern) {
    pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
           {"use_regex", true}};
  } else {
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            {{{"type", "Split"}, {"pattern", {{"Regex", bpe.pattern}}},
              {"behavior", "Isolated"}, {"invert", false}},
             {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
              {"use_regex", false}}}}};
  }
  json root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre},
      {"post_processor", nullptr},
      {"decoder",
       {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
        {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
        {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", false},
        {"vocab", vocab}, {"merges", merges}}},
  };
  return root.dump(2) + "\n";
}

void write_tokenizer_json(const TrainedBpe& bpe, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  ALBION_CHECK_AS(UsageError, out.good(), path, ": cannot open for writing");
  out << to_tokenizer_json(bpe);
  out.close();
  ALBION_CHECK_AS(UsageError, out.good(), path, ": write failed");
}

std::unique_ptr<Tokenizer> make_tokenizer(const TrainedBpe& bpe) {
  BpeDefinition def;
  def.source = "Albion's BPE trainer";
  def.file = "trained BPE";
  def.pre_tokenizer_patterns = {bpe.pattern};
  def.vocab = bpe.vocab;
  def.defined.assign(bpe.vocab.size(), true);
  def.merges = bpe.merges;
  for (const auto& s : bpe.special_tokens) def.added.push_back({s.text, s.id, true});
  return make_bpe_tokenizer(std::move(def));
}

}  // namespace albion::tokenizers
