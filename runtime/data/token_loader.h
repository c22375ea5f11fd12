// File: runtime/data/token_loader.h
// Feeds the trainer (input, target, loss-mask) batches from a prepared token dataset.
//
// The split's shards form one token stream of N tokens, cut into W = (N - 1) / seq_len windows of
// seq_len + 1 tokens (input = window[0:L], target = window[1:L+1]). Each epoch visits the windows
// in a seeded pseudo-random order (Permutation); at each step data-parallel rank r of R takes the
// positions consumed + k*R + r for k < batch_size, so ranks never share a window, and `consumed`
// grows by R * batch_size per step on every rank alike. The whole position is LoaderState
// {epoch, consumed}: the checkpoint stores it, and a run restored from it yields exactly the batches
// the uninterrupted run would have, also with a different number of ranks (consumed is global).
// An epoch ends when fewer than R * batch_size windows remain (the remainder is skipped).
// Encrypted datasets need `key_spec`; their chunks are decrypted in memory as windows need them.
//
// With `pack_documents`, the sequences are not windows of the stream but sets of whole documents
// (runtime/data/document_packing.h), padded to seq_len + 1 tokens; the loss mask then leaves out the
// padding and each document's first token (no document is asked to predict the next one), and
// everything above holds with "sequence" for "window".
//
// With `document_positions`, a batch also says where each input token sits in its document, for a
// model that attends within documents (Note [Attention within documents], runtime/models/causal_lm.h).
//
// A background thread prepares the next `prefetch` batches; on a CUDA device they are built in
// pinned host memory and copied with non_blocking=true on the caller's current stream.
#pragma once

#include <ATen/ATen.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runtime/data/dataset_manifest.h"
#include "runtime/data/document_packing.h"
#include "runtime/data/token_shard.h"

namespace albion::data {

struct LoaderState {
  std::uint64_t epoch = 0;
  std::uint64_t consumed = 0;  // sequences taken by all ranks together in this epoch
  bool operator==(const LoaderState&) const = default;
};

struct LoaderOptions {
  std::string directory;
  std::string split = "train";
  std::int64_t seq_len = 0;
  std::int64_t batch_size = 0;  // sequences per rank per step
  int rank = 0;
  int world_size = 1;
  std::uint64_t seed = 0;
  bool shuffle = true;  // false: sequences in order (validation)
  int prefetch = 2;
  at::Device device = at::kCPU;
  std::string key_spec;  // the key of an encrypted dataset (file:, env:, pkcs11:)
  bool pack_documents = false;      // whole documents per sequence (data.packing = documents)
  bool document_positions = false;  // fill TokenBatch::positions
};

struct TokenBatch {
  at::Tensor inputs;     // int64 [batch, seq_len]
  at::Tensor targets;    // int64 [batch, seq_len]
  at::Tensor loss_mask;  // uint8 [batch, seq_len], 1 = train on this target; undefined: every target trains
  // int64 [batch, seq_len]: each input's position in its document, counted from 0 where the document
  // starts, or from the window's start for the one it begins inside. Only with document_positions,
  // and undefined for a batch with no document starting inside a row (the positions 0 .. seq_len - 1).
  at::Tensor positions;
  // int64 [batch] on the host: each row's inputs past its last packed document. Only with
  // pack_documents; undefined otherwise (no row is padded).
  at::Tensor padding;
  LoaderState state;     // the loader's state after this batch

  // The first `rows` rows of every tensor (views), the same state.
  TokenBatch first_rows(std::int64_t rows) const;
  // How many targets the loss trains on (the mask's ones, else all): 0-dim fp64 on the batch's device.
  at::Tensor trained_targets() const;
  // How many inputs are text, not padding: what a rate of tokens counts.
  std::int64_t text_inputs() const;
};

class TokenLoader {
 public:
  // Reads dataset.json, checks each shard's SHA-256 (IntegrityError on mismatch) and structure,
  // and that the split holds at least one step's sequences (UsageError otherwise).
  explicit TokenLoader(LoaderOptions options);
  ~TokenLoader();
  TokenLoader(const TokenLoader&) = delete;
  TokenLoader& operator=(const TokenLoader&) = delete;

  TokenBatch next();
  LoaderState state() const { return state_; }
  // Continue from `state` (e.g. from a checkpoint); discards prefetched batches.
  void restore(const LoaderState& state);

  const DatasetManifest& manifest() const { return manifest_; }
  std::uint64_t sequences_per_epoch() const { return sequences_; }
  // The first stream position of each of the split's documents, then the stream's end.
  std::vector<std::uint64_t> document_starts() const;
  // With pack_documents: how the split's documents were packed.
  const std::optional<DocumentPacking>& packing() const { return packing_; }
  std::uint64_t steps_per_epoch() const;

 private:
  struct HostBatch {
    at::Tensor inputs, targets, loss_mask, positions, padding;
    LoaderState state;
  };
  HostBatch build(const LoaderState& state, LoaderState* after);
  // Sequence `sequence`'s seq_len + 1 tokens (and mask, unless null); with `document_starts`, the
  // indexes in (0, seq_len) at which a document starts among its inputs, in order. Returns how
  // many of its inputs are padding.
  std::int64_t read_sequence(std::uint64_t sequence, std::int64_t* tokens, std::uint8_t* mask,
                             std::vector<std::int64_t>* document_starts);
  // Stream tokens [start, start + count) (and mask, unless null); with `document_starts`, appends
  // the indexes in (0, count) at which a document starts.
  void read_span(std::uint64_t start, std::uint64_t count, std::int64_t* tokens, std::uint8_t* mask,
                 std::vector<std::int64_t>* document_starts);
  void start_prefetch();
  void stop_prefetch();
  void prefetch_loop(LoaderState from);

  LoaderOptions options_;
  DatasetManifest manifest_;
  // Read by the prefetch thread only (a sealed shard's cipher and cache are single-threaded).
  std::vector<std::unique_ptr<ShardReader>> shards_;
  std::vector<std::uint64_t> shard_starts_;  // first stream position of each shard, then N
  std::optional<DocumentPacking> packing_;
  std::uint64_t sequences_ = 0;
  LoaderState state_;

  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<HostBatch> ready_;
  std::exception_ptr worker_error_;
  bool stopping_ = false;
};

}  // namespace albion::data
