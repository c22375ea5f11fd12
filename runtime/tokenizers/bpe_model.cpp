// File: runtime/tokenizers/bpe_model.cpp
// BPE merging. Each pre-token starts as one symbol per byte; the lowest-ranked adjacent pair is
// merged (leftmost first on ties) until no pair has a merge rule — the same order Hugging Face
// and tiktoken apply, so ids agree with them exactly.
//   - Short words (nearly all of them) use a flat array of symbols and pair ranks: a linear scan
//     beats a heap below a few dozen symbols.
//   - Long words (runs of digits, whitespace or symbols) use a linked list of symbols and a
//     min-heap of candidate pairs with lazy invalidation, O(n log n).
//   - Encoded words go into a bounded, sharded cache; text repeats words, so most lookups hit.
#include "runtime/tokenizers/bpe_model.h"

#include <algorithm>
#include <bit>
#include <mutex>
#include <queue>

#include "runtime/base/check.h"
#include "runtime/tokenizers/byte_level.h"

namespace albion::tokenizers {
namespace {

constexpr std::uint32_t kNoRank = ~std::uint32_t{0};
// Words with more symbols than this use the heap. Measured crossover is around 50-100 symbols.
constexpr std::size_t kShortWordLimit = 64;
// Words longer than this are not cached: they are rare and would crowd out the common ones.
constexpr std::size_t kMaxCachedWordBytes = 64;

}  // namespace

// A cache of encoded words, split into shards with a mutex each so threads rarely contend. A
// shard that fills up is cleared: crude, but bounded, and the frequent words return immediately.
class BpeModel::WordCache {
 public:
  static constexpr std::size_t kShards = 64;
  static constexpr std::size_t kEntriesPerShard = 4096;

  bool lookup(std::string_view word, std::size_t hash, std::vector<TokenId>& out) {
    Shard& s = shards_[hash % kShards];
    std::lock_guard lock(s.mutex);
    auto it = s.map.find(word);
    if (it == s.map.end()) return false;
    out.insert(out.end(), it->second.begin(), it->second.end());
    return true;
  }

  void insert(std::string_view word, std::size_t hash, const TokenId* ids, std::size_t n) {
    Shard& s = shards_[hash % kShards];
    std::lock_guard lock(s.mutex);
    if (s.map.size() >= kEntriesPerShard) s.map.clear();
    s.map.try_emplace(std::string(word), ids, ids + n);
  }

 private:
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<TokenId>, StringHash, std::equal_to<>> map;
  };
  std::array<Shard, kShards> shards_;
};

void BpeModel::MergeTable::build(const std::vector<MergeRule>& merges) {
  std::size_t capacity = 16;
  while (capacity < merges.size() * 2) capacity *= 2;
  keys_.assign(capacity, kEmpty);
  values_.assign(capacity, MergeValue{});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  for (std::uint32_t rank = 0; rank < merges.size(); ++rank) {
    const auto& m = merges[rank];
    const std::uint64_t key = (std::uint64_t{m.left} << 32) | m.right;
    std::uint64_t slot = (key * 0x9E3779B97F4A7C15ULL) >> shift_;
    while (keys_[slot] != kEmpty && keys_[slot] != key) slot = (slot + 1) & mask_;
    if (keys_[slot] == key) continue;  // a repeated merge keeps its first (lowest) rank
    keys_[slot] = key;
    values_[slot] = MergeValue{rank, m.result};
  }
}

const BpeModel::MergeValue* BpeModel::MergeTable::find(TokenId left, TokenId right) const {
  const std::uint64_t key = (std::uint64_t{left} << 32) | right;
  std::uint64_t slot = (key * 0x9E3779B97F4A7C15ULL) >> shift_;
  while (true) {
    const std::uint64_t k = keys_[slot];
    if (k == key) return &values_[slot];
    if (k == kEmpty) return nullptr;
    slot = (slot + 1) & mask_;
  }
}

BpeModel::BpeModel(std::vector<std::string> vocab, std::vector<bool> defined,
                   const std::vector<MergeRule>& merges, bool ignore_merges, std::string_view file)
    : vocab_(std::move(vocab)),
      defined_(std::move(defined)),
      merges_(merges),
      ignore_merges_(ignore_merges),
      cache_(std::make_unique<WordCache>()) {
  ALBION_CHECK(vocab_.size() == defined_.size(), "vocab and defined differ in size");
  by_bytes_.reserve(vocab_.size());
  for (TokenId id = 0; id < vocab_.size(); ++id) {
    // On duplicate spellings the lowest id wins, as in Hugging Face.
    if (defined_[id]) by_bytes_.try_emplace(vocab_[id], id);
  }
  for (unsigned b = 0; b < 256; ++b) {
    const auto it = by_bytes_.find(std::string_view(reinterpret_cast<const char*>(&b), 1));
    if (it == by_bytes_.end()) {
      const std::string spelled = bytes_to_byte_level(std::string(1, static_cast<char>(b)));
      throw UsageError(str_cat(file, ": vocabulary has no token for byte 0x", std::hex, b,
                               " ('", spelled, "'); a byte-level BPE needs all 256"));
    }
    byte_token_[b] = it->second;
  }
  table_.build(merges_);
}

BpeModel::~BpeModel() = default;

std::int64_t BpeModel::find(std::string_view bytes) const {
  const auto it = by_bytes_.find(bytes);
  return it == by_bytes_.end() ? -1 : static_cast<std::int64_t>(it->second);
}

void BpeModel::merge_short(std::vector<TokenId>& sym) const {
  // ranks[i] is the rank of merging sym[i] and sym[i + 1].
  std::array<std::uint32_t, kShortWordLimit> ranks;
  std::array<TokenId, kShortWordLimit> results;
  std::size_t n = sym.size();
  auto score = [&](std::size_t i) {
    const MergeValue* m = table_.find(sym[i], sym[i + 1]);
    ranks[i] = m ? m->rank : kNoRank;
    results[i] = m ? m->result : 0;
  };
  for (std::size_t i = 0; i + 1 < n; ++i) score(i);
  while (n > 1) {
    std::size_t best = 0;
    for (std::size_t i = 1; i + 1 < n; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == kNoRank) break;
    sym[best] = results[best];
    for (std::size_t i = best + 1; i + 1 < n; ++i) {
      sym[i] = sym[i + 1];
      ranks[i] = ranks[i + 1];
      results[i] = results[i + 1];
    }
    --n;
    if (best > 0) score(best - 1);
    if (best + 1 < n) score(best);
  }
  sym.resize(n);
}

void BpeModel::merge_long(std::vector<TokenId>& sym) const {
  const std::size_t n = sym.size();
  constexpr std::uint32_t kNone = ~std::uint32_t{0};
  std::vector<std::uint32_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = i == 0 ? kNone : static_cast<std::uint32_t>(i - 1);
    next[i] = i + 1 == n ? kNone : static_cast<std::uint32_t>(i + 1);
  }
  struct Candidate {
    std::uint32_t rank;
    std::uint32_t pos;  // the left symbol of the pair
    TokenId left, right, result;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](std::uint32_t i) {
    if (i == kNone || next[i] == kNone) return;
    if (const MergeValue* m = table_.find(sym[i], sym[next[i]])) {
      heap.push(Candidate{m->rank, i, sym[i], sym[next[i]], m->result});
    }
  };
  for (std::uint32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    // Stale when either side was merged away or changed since the candidate was pushed.
    const std::uint32_t j = next[c.pos];
    if (!alive[c.pos] || j == kNone || sym[c.pos] != c.left || sym[j] != c.right) continue;
    sym[c.pos] = c.result;
    alive[j] = false;
    next[c.pos] = next[j];
    if (next[j] != kNone) prev[next[j]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  std::size_t out = 0;
  for (std::uint32_t i = 0; i != kNone; i = next[i]) sym[out++] = sym[i];
  sym.resize(out);
}

void BpeModel::encode_word(std::string_view word, std::vector<TokenId>& out) const {
  if (word.size() == 1) {
    out.push_back(byte_token_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (ignore_merges_) {
    const auto it = by_bytes_.find(word);
    if (it != by_bytes_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  const std::size_t hash = cacheable ? StringHash{}(word) : 0;
  if (cacheable && cache_->lookup(word, hash, out)) return;

  thread_local std::vector<TokenId> sym;
  sym.clear();
  for (char c : word) sym.push_back(byte_token_[static_cast<unsigned char>(c)]);
  if (sym.size() <= kShortWordLimit) {
    merge_short(sym);
  } else {
    merge_long(sym);
  }
  out.insert(out.end(), sym.begin(), sym.end());
  if (cacheable) cache_->insert(word, hash, sym.data(), sym.size());
}

}  // namespace albion::tokenizers
