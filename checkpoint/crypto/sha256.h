// File: checkpoint/crypto/sha256.h
// SHA-256 through OpenSSL's EVP digest API, for the audit chain and key fingerprints.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace albion::checkpoint {

using Sha256Digest = std::array<std::uint8_t, 32>;

Sha256Digest sha256(std::span<const std::uint8_t> data);
Sha256Digest sha256(std::string_view text);
std::string sha256_hex(std::string_view text);

}  // namespace albion::checkpoint
