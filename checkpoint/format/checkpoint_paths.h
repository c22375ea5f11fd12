// File: checkpoint/format/checkpoint_paths.h
// The names inside a checkpoint directory (Note [Commit protocol] in checkpoint_store.h):
//
//   checkpoints/
//     step-00001000/          a committed checkpoint: shard-00000.h5 ... shard-0000N.h5, manifest.json
//     step-00001500.tmp/      being written (or left by a crash): never loaded, removed on the next save
//     .deleting-step-00000500/ being removed by retention: never loaded
//     latest                  "step-00001000\n": the newest committed checkpoint, for people and tools
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace albion::checkpoint {

inline constexpr const char* kManifestFileName = "manifest.json";
inline constexpr const char* kLatestFileName = "latest";
inline constexpr const char* kStagingSuffix = ".tmp";
inline constexpr const char* kDeletingPrefix = ".deleting-";

std::string step_directory_name(std::int64_t step);  // "step-00001000"
std::string shard_file_name(std::uint32_t index);    // "shard-00003.h5"

// The step of a committed checkpoint's directory name ("step-00001000" -> 1000); nullopt for
// anything else, staging and deleting directories included.
std::optional<std::int64_t> parse_step_directory_name(std::string_view name);

}  // namespace albion::checkpoint
