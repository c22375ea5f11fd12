// File: runtime/data/token_loader.cpp
#include "runtime/data/token_loader.h"

#include <algorithm>
#include <filesystem>

#include "runtime/base/check.h"
#include "runtime/data/file_digest.h"
#include "checkpoint/keys/key_provider.h"
#include "runtime/data/dataset_encryption.h"
#include "runtime/data/permutation.h"
#include "runtime/data/sealed_token_shard.h"

namespace albion::data {

namespace fs = std::filesystem;

TokenBatch TokenBatch::first_rows(std::int64_t rows) const {
  auto first = [rows](const at::Tensor& t) { return t.defined() ? t.narrow(0, 0, rows) : t; };
  return {first(inputs), first(targets), first(loss_mask), first(positions), first(padding), state};
}

std::int64_t TokenBatch::text_inputs() const {
  std::int64_t padded = 0;
  if (padding.defined()) {  // summed by hand: on the host, with no read through an op (.item())
    const auto rows = padding.accessor<std::int64_t, 1>();
    for (std::int64_t row = 0; row < rows.size(0); ++row) padded += rows[row];
  }
  return inputs.numel() - padded;
}

at::Tensor TokenBatch::trained_targets() const {
  if (loss_mask.defined()) return loss_mask.sum().to(at::kDouble);
  return at::full({}, static_cast<double>(targets.numel()), targets.options().dtype(at::kDouble));
}

TokenLoader::TokenLoader(LoaderOptions options) : options_(std::move(options)) {
  ALBION_CHECK_AS(UsageError, options_.seq_len > 0 && options_.batch_size > 0,
                  "loader: seq_len and batch_size must be positive");
  ALBION_CHECK_AS(UsageError, options_.world_size >= 1 && options_.rank >= 0 &&
                                  options_.rank < options_.world_size,
                  "loader: rank ", options_.rank, " outside world of ", options_.world_size);
  std::unique_ptr<checkpoint::KeyProvider> key;
  if (!options_.key_spec.empty()) key = checkpoint::open_key_provider(options_.key_spec);
  manifest_ = read_manifest(options_.directory, key.get());
  std::optional<DatasetKey> dataset_key;
  if (manifest_.encrypted) dataset_key = DatasetKey::open(*key, *manifest_.encryption);
  auto split = manifest_.splits.find(options_.split);
  ALBION_CHECK_AS(UsageError, split != manifest_.splits.end(), options_.directory, ": no split '",
                  options_.split, "'");
  std::uint64_t position = 0;
  for (const ShardEntry& entry : split->second.shards) {
    const std::string path = (fs::path(options_.directory) / entry.file).string();
    ALBION_CHECK_AS(IntegrityError, fs::exists(path), path, ": shard listed in dataset.json is missing");
    // Digest first: HDF5 never parses a file the manifest does not vouch for.
    ALBION_CHECK_AS(IntegrityError, sha256_file(path) == entry.sha256, path,
                    ": SHA-256 does not match dataset.json (modified or corrupted shard)");
    if (dataset_key) {
      SealedShardExpectation expected{entry.file_index, manifest_.token_width, manifest_.vocab_size,
                                      entry.tokens, entry.documents, manifest_.has_loss_mask,
                                      manifest_.encryption->chunk_tokens};
      shards_.push_back(std::make_unique<SealedTokenShard>(path, dataset_key->cipher(), expected));
    } else {
      shards_.push_back(std::make_unique<TokenShard>(path, manifest_.token_width,
                                                     manifest_.vocab_size, entry.tokens));
    }
    ALBION_CHECK_AS(IntegrityError, shards_.back()->has_loss_mask() == manifest_.has_loss_mask,
                    path, ": loss mask presence differs from dataset.json");
    shard_starts_.push_back(position);
    position += entry.tokens;
  }
  shard_starts_.push_back(position);
  if (options_.pack_documents) {
    packing_ = pack_documents(document_starts(), static_cast<std::uint64_t>(options_.seq_len) + 1);
    sequences_ = packing_->size();
  } else {
    sequences_ = position > 0 ? (position - 1) / static_cast<std::uint64_t>(options_.seq_len) : 0;
  }
  const std::uint64_t per_step =
      static_cast<std::uint64_t>(options_.world_size) * static_cast<std::uint64_t>(options_.batch_size);
  ALBION_CHECK_AS(UsageError, sequences_ >= per_step, options_.directory, ": split '", options_.split, "' has ",
                  sequences_, packing_ ? " sequences of whole documents" : " windows", " of ", options_.seq_len,
                  " tokens, fewer than one step needs (", options_.world_size, " ranks x ", options_.batch_size, ")");
}

TokenLoader::~TokenLoader() { stop_prefetch(); }

std::vector<std::uint64_t> TokenLoader::document_starts() const {
  std::vector<std::uint64_t> starts;
  for (std::size_t shard = 0; shard < shards_.size(); ++shard) {
    const std::vector<std::uint64_t>& offsets = shards_[shard]->doc_offsets();  // ends with the shard's size
    for (std::size_t d = 0; d + 1 < offsets.size(); ++d) starts.push_back(shard_starts_[shard] + offsets[d]);
  }
  starts.push_back(shard_starts_.back());
  return starts;
}

std::uint64_t TokenLoader::steps_per_epoch() const {
  return sequences_ / (static_cast<std::uint64_t>(options_.world_size) *
                       static_cast<std::uint64_t>(options_.batch_size));
}

void TokenLoader::read_span(std::uint64_t start, std::uint64_t count, std::int64_t* tokens, std::uint8_t* mask,
                            std::vector<std::int64_t>* document_starts) {
  std::uint64_t position = start;
  std::uint64_t remaining = count;
  std::size_t shard = static_cast<std::size_t>(
      std::upper_bound(shard_starts_.begin(), shard_starts_.end(), position) - shard_starts_.begin() - 1);
  while (remaining > 0) {
    const std::uint64_t offset = position - shard_starts_[shard];
    const std::uint64_t taken = std::min(remaining, shards_[shard]->token_count() - offset);
    shards_[shard]->copy_tokens(offset, taken, tokens);
    if (mask != nullptr) shards_[shard]->copy_loss_mask(offset, taken, mask);
    if (document_starts != nullptr) {
      // Each shard starts a document, so its offsets hold every start.
      const std::vector<std::uint64_t>& starts = shards_[shard]->doc_offsets();
      for (auto first = std::lower_bound(starts.begin(), starts.end(), offset);
           first != starts.end() && *first < offset + taken; ++first) {
        const auto index = static_cast<std::int64_t>(shard_starts_[shard] + *first - start);
        if (index > 0) document_starts->push_back(index);
      }
    }
    tokens += taken;
    if (mask != nullptr) mask += taken;
    position += taken;
    remaining -= taken;
    ++shard;
  }
}

std::int64_t TokenLoader::read_sequence(std::uint64_t sequence, std::int64_t* tokens, std::uint8_t* mask,
                                        std::vector<std::int64_t>* document_starts) {
  const std::int64_t L = options_.seq_len;
  if (document_starts != nullptr) document_starts->clear();
  if (!packing_) {
    // Window w is stream positions [w*L, w*L + L + 1); a start at index L begins no input.
    read_span(sequence * static_cast<std::uint64_t>(L), static_cast<std::uint64_t>(L) + 1, tokens, mask,
              document_starts);
    if (document_starts != nullptr && !document_starts->empty() && document_starts->back() == L) {
      document_starts->pop_back();
    }
    return 0;
  }
  // Whole documents one after another, then padding; no target is a document's first token (it
  // would be predicted from the document before) or padding.
  std::uint64_t filled = 0;
  for (std::uint64_t s = packing_->first[sequence]; s < packing_->first[sequence + 1]; ++s) {
    const PackedSegment& segment = packing_->segments[s];
    read_span(segment.start, segment.length, tokens + filled, manifest_.has_loss_mask ? mask + filled : nullptr,
              nullptr);
    if (!manifest_.has_loss_mask) std::fill_n(mask + filled, segment.length, std::uint8_t{1});
    mask[filled] = 0;
    if (document_starts != nullptr && filled > 0) document_starts->push_back(static_cast<std::int64_t>(filled));
    filled += segment.length;
  }
  const std::uint64_t capacity = static_cast<std::uint64_t>(L) + 1;
  std::fill(tokens + filled, tokens + capacity, static_cast<std::int64_t>(manifest_.end_of_text.value_or(0)));
  std::fill(mask + filled, mask + capacity, std::uint8_t{0});
  return std::max<std::int64_t>(0, L - static_cast<std::int64_t>(filled));
}

TokenLoader::HostBatch TokenLoader::build(const LoaderState& state, LoaderState* after) {
  const std::uint64_t ranks = static_cast<std::uint64_t>(options_.world_size);
  const std::uint64_t batch = static_cast<std::uint64_t>(options_.batch_size);
  LoaderState current = state;
  if (current.consumed + ranks * batch > sequences_) {
    current.epoch += 1;
    current.consumed = 0;
  }
  const Permutation order(sequences_, options_.seed * 0x9e3779b97f4a7c15ull + current.epoch);
  const std::int64_t L = options_.seq_len;
  const bool pinned = options_.device.is_cuda();
  const auto int64 = at::TensorOptions().dtype(at::kLong).pinned_memory(pinned);
  const auto uint8 = at::TensorOptions().dtype(at::kByte).pinned_memory(pinned);
  HostBatch out;
  out.inputs = at::empty({options_.batch_size, L}, int64);
  out.targets = at::empty({options_.batch_size, L}, int64);
  const bool masked = manifest_.has_loss_mask || packing_;
  if (masked) out.loss_mask = at::empty({options_.batch_size, L}, uint8);
  std::vector<std::int64_t> sequence_tokens(static_cast<std::size_t>(L) + 1);
  std::vector<std::uint8_t> sequence_mask(masked ? sequence_tokens.size() : 0);
  std::vector<std::int64_t> document_starts;
  if (options_.document_positions) out.positions = at::empty({options_.batch_size, L}, int64);
  if (packing_) out.padding = at::empty({options_.batch_size}, at::kLong);
  bool any_document_starts = false;
  for (std::uint64_t k = 0; k < batch; ++k) {
    const std::uint64_t position = current.consumed + k * ranks + static_cast<std::uint64_t>(options_.rank);
    const std::uint64_t index = options_.shuffle ? order(position) : position;
    const std::int64_t padding =
        read_sequence(index, sequence_tokens.data(), sequence_mask.empty() ? nullptr : sequence_mask.data(),
                      options_.document_positions ? &document_starts : nullptr);
    if (packing_) out.padding.data_ptr<std::int64_t>()[k] = padding;
    std::int64_t* in = out.inputs.data_ptr<std::int64_t>() + k * L;
    std::int64_t* target = out.targets.data_ptr<std::int64_t>() + k * L;
    std::copy(sequence_tokens.begin(), sequence_tokens.end() - 1, in);
    std::copy(sequence_tokens.begin() + 1, sequence_tokens.end(), target);
    if (!sequence_mask.empty()) {
      // The mask belongs to the target token: train on predicting token i + 1 iff its mask is 1.
      std::copy(sequence_mask.begin() + 1, sequence_mask.end(), out.loss_mask.data_ptr<std::uint8_t>() + k * L);
    }
    if (options_.document_positions) {
      std::int64_t* positions = out.positions.data_ptr<std::int64_t>() + k * L;
      std::int64_t document_start = 0;
      auto next_start = document_starts.begin();
      for (std::int64_t i = 0; i < L; ++i) {
        while (next_start != document_starts.end() && *next_start == i) document_start = *next_start++;
        positions[i] = i - document_start;
      }
      any_document_starts = any_document_starts || !document_starts.empty();
    }
  }
  if (!any_document_starts) out.positions = at::Tensor();  // every row counts 0 .. L - 1
  current.consumed += ranks * batch;
  out.state = current;
  *after = current;
  return out;
}

void TokenLoader::prefetch_loop(LoaderState from) {
  try {
    LoaderState state = from;
    while (true) {
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] {
          return stopping_ || ready_.size() < static_cast<std::size_t>(std::max(1, options_.prefetch));
        });
        if (stopping_) return;
      }
      LoaderState after;
      HostBatch batch = build(state, &after);
      state = after;
      std::lock_guard lock(mutex_);
      ready_.push_back(std::move(batch));
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard lock(mutex_);
    worker_error_ = std::current_exception();
    changed_.notify_all();
  }
}

void TokenLoader::start_prefetch() {
  stopping_ = false;
  worker_ = std::thread(&TokenLoader::prefetch_loop, this, state_);
}

void TokenLoader::stop_prefetch() {
  if (!worker_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
  }
  worker_.join();
  ready_.clear();
  worker_error_ = nullptr;
}

void TokenLoader::restore(const LoaderState& state) {
  stop_prefetch();
  ALBION_CHECK_AS(UsageError, state.consumed <= sequences_, "loader state consumes ", state.consumed,
                  " sequences but the split has ", sequences_, " (a different dataset?)");
  state_ = state;
}

TokenBatch TokenLoader::next() {
  if (!worker_.joinable()) start_prefetch();
  HostBatch host;
  {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return !ready_.empty() || worker_error_; });
    if (ready_.empty()) std::rethrow_exception(worker_error_);
    host = std::move(ready_.front());
    ready_.pop_front();
    changed_.notify_all();
  }
  state_ = host.state;
  TokenBatch batch;
  batch.state = host.state;
  batch.padding = std::move(host.padding);  // counted on the host, read there
  if (options_.device.is_cpu()) {
    batch.inputs = std::move(host.inputs);
    batch.targets = std::move(host.targets);
    batch.loss_mask = std::move(host.loss_mask);
    batch.positions = std::move(host.positions);
  } else {
    batch.inputs = host.inputs.to(options_.device, /*non_blocking=*/true);
    batch.targets = host.targets.to(options_.device, /*non_blocking=*/true);
    if (host.loss_mask.defined()) batch.loss_mask = host.loss_mask.to(options_.device, true);
    if (host.positions.defined()) batch.positions = host.positions.to(options_.device, true);
  }
  return batch;
}

}  // namespace albion::data
