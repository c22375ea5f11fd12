// File: runtime/data/file_digest.h
// SHA-256 of a file, as lower-case hex (checkpoint/crypto/sha256.h). Datasets record the digest
// of every source file and shard; readers refuse a shard whose digest differs (IntegrityError).
#pragma once

#include <string>

namespace albion::data {

// Streams the file in 4 MiB reads; throws UsageError if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace albion::data
