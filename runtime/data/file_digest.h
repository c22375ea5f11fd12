// File: runtime/data/file_digest.h
// SHA-256 of files and buffers (OpenSSL EVP), as lower-case hex. Datasets record the digest of
// every source file and shard; readers refuse a shard whose digest differs (IntegrityError).
#pragma once

#include <string>
#include <string_view>

namespace albion::data {

// Streams the file in 4 MiB reads; throws UsageError if it cannot be read.
std::string sha256_file(const std::string& path);

std::string sha256_hex(std::string_view bytes);

}  // namespace albion::data
