// File: checkpoint/format/checkpoint_writer.h
// Saves a checkpoint from every rank of a job and commits it atomically.
//
// Note [Commit protocol]
//   1. rank 0 removes leftovers of crashed saves (*.tmp, .deleting-*), creates step-N.tmp/, draws
//      a checkpoint id and a fresh DEK, wraps the DEK with the KEK and broadcasts id and wrapped
//      key; every other rank unwraps its own copy (the DEK never crosses the network in clear);
//   2. every rank writes and fsyncs shard-<rank>.h5 in step-N.tmp/ and sends rank 0 its record
//      (tensor index, size, SHA-256) or its error;
//   3. rank 0 writes and fsyncs manifest.json, fsyncs step-N.tmp/, renames it to step-N/ (the
//      commit point) and fsyncs the parent; then replaces `latest` (write, fsync, rename, fsync)
//      and applies retention (rename to .deleting-step-M/, fsync, remove);
//   4. rank 0 broadcasts the outcome, so every rank returns or throws together.
// A crash before the rename leaves only a .tmp directory, which no reader opens; after it, the new
// checkpoint is complete. Readers resume from the newest committed step-N/ (list_checkpoints),
// so a crash between the rename and the `latest` update loses nothing, and retention only ever
// removes checkpoints older than the newest.
//
//   CheckpointWriter writer(options, group);
//   writer.save({step, my_slices, recipe_ini, state_json, data_parallel_size});
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/format/rank_group.h"
#include "checkpoint/format/shard_record.h"
#include "checkpoint/format/shard_writer.h"
#include "checkpoint/keys/key_provider.h"

namespace albion::checkpoint {

struct CheckpointOptions {
  std::filesystem::path directory;   // holds step-N/ directories and `latest`
  const KeyProvider* key = nullptr;  // null: plaintext (the caller has checked the policy allows it)
  int keep = 3;                      // committed checkpoints kept; 0 keeps all
  ShardWriteOptions shard;
  AuditLog* audit = nullptr;         // rank 0 records every save, committed or failed
  // Called on rank 0 as each step of the commit protocol begins ("manifest", "rename", "latest",
  // "retention", "done"): lets crash tests stop the process at a chosen moment.
  std::function<void(const char* phase)> on_phase;
};

// One rank's part of a save; rank 0's recipe, state and layout go into the manifest.
struct SaveRequest {
  std::int64_t step = 0;
  std::vector<TensorSlice> slices;
  std::string recipe;
  std::string state_json = "{}";
  int data_parallel_size = 1;
};

class CheckpointWriter {
 public:
  CheckpointWriter(CheckpointOptions options, RankGroup& group);

  // Collective: every rank calls it with the same step. Returns the committed directory; throws on
  // every rank when any rank failed, leaving the previous checkpoints as they were.
  std::filesystem::path save(const SaveRequest& request);

 private:
  void phase(const char* name) const;
  void commit(const SaveRequest& request, const std::filesystem::path& staging, const std::string& checkpoint_id,
              const std::vector<std::uint8_t>& wrapped_key, const DataKey* dek,
              const std::vector<std::string>& records);
  void apply_retention();

  CheckpointOptions options_;
  RankGroup& group_;
};

}  // namespace albion::checkpoint
