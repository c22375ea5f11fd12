// File: checkpoint/crypto/hex.h
// Lower-case hex for digests and fingerprints, and a decoder for hex-encoded keys that writes
// straight into SecretBytes and never echoes its input in an error message.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/crypto/secret_bytes.h"

namespace albion::checkpoint {

std::string to_hex(std::span<const std::uint8_t> bytes);

// The bytes `hex` encodes (upper or lower case), or nullopt if its length is odd or it holds a
// non-hex character. Constant-time per character is not needed: the caller has the text anyway.
std::optional<SecretBytes> secret_from_hex(std::string_view hex);

// The same for public bytes (wrapped keys, sealed manifests).
std::optional<std::vector<std::uint8_t>> bytes_from_hex(std::string_view hex);

}  // namespace albion::checkpoint
