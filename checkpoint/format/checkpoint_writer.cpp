// File: checkpoint/format/checkpoint_writer.cpp
#include "checkpoint/format/checkpoint_writer.h"

#include <sys/stat.h>

#include "checkpoint/crypto/chunk_cipher.h"
#include "checkpoint/crypto/hex.h"
#include "checkpoint/crypto/secret_bytes.h"
#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/format/checkpoint_paths.h"
#include "checkpoint/format/manifest.h"
#include "checkpoint/io/atomic_file.h"
#include "checkpoint/io/unique_fd.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/base/remove_tree.h"

namespace albion::checkpoint {

namespace fs = std::filesystem;

namespace {

// Messages between ranks: "+payload" for success, "-message" for a failure to report.
std::string ok_message(const std::string& payload) { return "+" + payload; }
std::string error_message(const std::string& message) { return "-" + message; }
bool is_ok(const std::string& message) { return !message.empty() && message[0] == '+'; }
std::string payload(const std::string& message) { return message.empty() ? "" : message.substr(1); }

std::string describe_current_exception() {
  try {
    throw;
  } catch (const std::exception& error) {
    return error.what();
  } catch (...) {
    return "unknown error";
  }
}

}  // namespace

CheckpointWriter::CheckpointWriter(CheckpointOptions options, RankGroup& group)
    : options_(std::move(options)), group_(group) {}

void CheckpointWriter::phase(const char* name) const {
  if (options_.on_phase) options_.on_phase(name);
}

fs::path CheckpointWriter::save(const SaveRequest& request) {
  const fs::path final_dir = options_.directory / step_directory_name(request.step);
  const fs::path staging = options_.directory / (step_directory_name(request.step) + kStagingSuffix);
  const std::string key_id = options_.key != nullptr ? options_.key->key_id() : "";

  // 1. Rank 0 prepares the directory and the key; everyone learns the id and the wrapped key.
  std::string start;
  std::optional<DataKey> dek;
  if (group_.rank() == 0) {
    try {
      fs::create_directories(options_.directory);
      remove_leftovers(options_.directory);
      ALBION_CHECK_AS(SystemError, ::mkdir(staging.c_str(), 0700) == 0, staging.string(), ": cannot create: ",
                      errno_text(errno));
      const std::string checkpoint_id = to_hex(SecretBytes::random(16).view());
      std::vector<std::uint8_t> wrapped;
      if (options_.key != nullptr) {
        dek = DataKey::generate();
        wrapped = options_.key->wrap(*dek);
      }
      start = ok_message(checkpoint_id + ":" + to_hex(wrapped));
    } catch (...) {
      start = error_message(describe_current_exception());
    }
  }
  start = group_.broadcast(start);
  if (!is_ok(start)) {
    if (group_.rank() == 0 && options_.audit != nullptr) {
      options_.audit->append({AuditAction::kSave, final_dir.string(), key_id, AuditOutcome::kFailed, payload(start)});
    }
    throw SystemError(str_cat("checkpoint ", final_dir.string(), ": ", payload(start)));
  }
  const std::string fields = payload(start);
  const std::string checkpoint_id = fields.substr(0, fields.find(':'));
  const std::vector<std::uint8_t> wrapped = bytes_from_hex(fields.substr(fields.find(':') + 1)).value();

  // 2. Every rank writes its shard.
  std::string mine;
  try {
    if (options_.key != nullptr && !dek) dek = options_.key->unwrap(wrapped);
    const fs::path shard = staging / shard_file_name(static_cast<std::uint32_t>(group_.rank()));
    const ShardRecord record = write_shard(shard, static_cast<std::uint32_t>(group_.rank()), request.slices,
                                           dek ? &*dek : nullptr, checkpoint_id, options_.shard);
    mine = ok_message(shard_record_json(record));
  } catch (...) {
    mine = error_message(str_cat("rank ", group_.rank(), ": ", describe_current_exception()));
  }
  const std::vector<std::string> records = group_.gather(mine);

  // 3. Rank 0 commits, unless a rank failed.
  std::string outcome;
  if (group_.rank() == 0) {
    try {
      for (const std::string& record : records) {
        if (!is_ok(record)) throw SystemError(payload(record));
      }
      commit(request, staging, checkpoint_id, wrapped, dek ? &*dek : nullptr, records);
      outcome = ok_message("");
    } catch (...) {
      outcome = error_message(describe_current_exception());
      remove_tree(staging.string());
    }
    if (options_.audit != nullptr) {
      options_.audit->append({AuditAction::kSave, final_dir.string(), key_id,
                              is_ok(outcome) ? AuditOutcome::kOk : AuditOutcome::kFailed, payload(outcome)});
    }
  }
  // 4. Everyone returns or throws together.
  outcome = group_.broadcast(outcome);
  if (!is_ok(outcome)) throw SystemError(str_cat("checkpoint ", final_dir.string(), ": ", payload(outcome)));
  return final_dir;
}

void CheckpointWriter::commit(const SaveRequest& request, const fs::path& staging, const std::string& checkpoint_id,
                              const std::vector<std::uint8_t>& wrapped_key, const DataKey* dek,
                              const std::vector<std::string>& records) {
  CheckpointManifest manifest;
  manifest.header.step = request.step;
  manifest.header.checkpoint_id = checkpoint_id;
  manifest.header.created = utc_timestamp_now();
  manifest.header.chunk_bytes = options_.shard.chunk_bytes;
  if (options_.key != nullptr) {
    manifest.header.cipher = kChunkCipherName;
    manifest.header.key_id = options_.key->key_id();
    manifest.header.wrapped_key = wrapped_key;
  }
  manifest.world_size = group_.size();
  manifest.data_parallel_size = request.data_parallel_size;
  manifest.recipe = request.recipe;
  manifest.state_json = request.state_json;
  for (const std::string& record : records) {
    manifest.shards.push_back(parse_shard_record_json(payload(record), "shard record"));
  }
  phase("manifest");
  write_file_atomically(staging / kManifestFileName, serialize_manifest(manifest, dek), ExistingFile::kRefuse);
  phase("rename");
  const fs::path final_dir = options_.directory / step_directory_name(request.step);
  // A step saved again (a run restarted from an older checkpoint) replaces the old one only now,
  // when the new one is complete.
  if (fs::exists(final_dir)) remove_checkpoint(final_dir);
  fs::rename(staging, final_dir);  // the commit point
  fsync_directory(options_.directory);
  phase("latest");
  write_latest(options_.directory, final_dir.filename().string());
  phase("retention");
  apply_retention();
  phase("done");
}

void CheckpointWriter::apply_retention() {
  if (options_.keep <= 0) return;
  std::vector<CommittedCheckpoint> all = list_checkpoints(options_.directory);
  for (std::size_t i = 0; i + static_cast<std::size_t>(options_.keep) < all.size(); ++i) {
    remove_checkpoint(all[i].path);
  }
}

}  // namespace albion::checkpoint
