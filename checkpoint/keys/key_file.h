// File: checkpoint/keys/key_file.h
// Raw key files: exactly 32 bytes, readable and writable by their owner only. Reading refuses a
// file that group or others could read or write (UsageError telling the user to chmod 600) and a
// file of the wrong size. Generating writes the file atomically with mode 0600 from the start, so
// no moment exists at which the key sits in a file others could open.
#pragma once

#include <filesystem>
#include <string>

#include "checkpoint/crypto/secret_bytes.h"
#include "runtime/base/error.h"

namespace albion::checkpoint {

inline constexpr std::size_t kKeyFileBytes = 32;

// The key in `path`. Checks are made on the opened descriptor, so a file swapped after the check
// is never the one read.
SecretBytes read_key_file(const std::filesystem::path& path);

enum class KeyFileOverwrite { kRefuse, kReplace };

// Writes 32 fresh random bytes to `path` (temp file in the same directory opened O_EXCL with mode
// 0600, write, fsync, rename, fsync the directory) and returns the new key's id. With kRefuse an
// existing `path` is a UsageError, and the rename itself refuses to replace one that appears
// meanwhile.
std::string generate_key_file(const std::filesystem::path& path, KeyFileOverwrite overwrite);

}  // namespace albion::checkpoint
