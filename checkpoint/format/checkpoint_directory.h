// File: checkpoint/format/checkpoint_directory.h
// The directory of a run's checkpoints (names in checkpoint_paths.h): which checkpoints are
// committed, the `latest` pointer, and the cleanup of what crashed saves leave behind.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace albion::checkpoint {

struct CommittedCheckpoint {
  std::int64_t step = 0;
  std::filesystem::path path;
};

// Committed checkpoints (step-N/ directories), oldest first; none if `directory` does not exist.
std::vector<CommittedCheckpoint> list_checkpoints(const std::filesystem::path& directory);
std::optional<CommittedCheckpoint> newest_checkpoint(const std::filesystem::path& directory);

// The directory name `latest` holds, or nullopt if there is no valid `latest`.
std::optional<std::string> read_latest(const std::filesystem::path& directory);
// Atomically points `latest` at `name` (write, fsync, rename, fsync the directory).
void write_latest(const std::filesystem::path& directory, const std::string& name);

// Removes staging (*.tmp) and half-deleted (.deleting-*) directories left by crashed saves.
// Only the one process that commits checkpoints may call it.
void remove_leftovers(const std::filesystem::path& directory);

// Removes a committed checkpoint without ever leaving a half-deleted step-N/: renames it to
// .deleting-step-N/ first (durably), then removes that.
void remove_checkpoint(const std::filesystem::path& checkpoint);

}  // namespace albion::checkpoint
