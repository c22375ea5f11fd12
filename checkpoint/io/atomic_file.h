// File: checkpoint/io/atomic_file.h
// Writes a whole file so that readers see the old contents or the new, never a part: the bytes go
// to "<path>.partial" (created exclusively, mode 0600 from the first byte), are fsync'd, renamed
// over `path`, and the directory is fsync'd. A failure removes the partial file; a partial file
// left by a crash is replaced (nothing reads .partial files). Used for manifests, `latest`, key
// files and exported weights.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>

namespace albion::checkpoint {

enum class ExistingFile { kReplace, kRefuse };

// kRefuse never replaces an existing `path`, not even one created meanwhile (RENAME_NOREPLACE):
// UsageError naming it; so is a directory that is missing or not writable. Other failures are
// SystemErrors naming the path.
void write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes,
                           ExistingFile existing);
void write_file_atomically(const std::filesystem::path& path, std::string_view text, ExistingFile existing);
// The concatenation of `pieces`, written from where they are (a header and tensors, without
// copying them into one buffer).
void write_file_atomically(const std::filesystem::path& path, std::span<const std::span<const std::uint8_t>> pieces,
                           ExistingFile existing);

}  // namespace albion::checkpoint
