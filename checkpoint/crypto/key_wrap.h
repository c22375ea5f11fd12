// File: checkpoint/crypto/key_wrap.h
// AES key wrap with padding (RFC 5649, "KWP") through OpenSSL's AES-*-WRAP-PAD ciphers: how a
// key-encryption key (KEK) protects a checkpoint's DataKey on disk. KWP is deterministic and
// authenticated: unwrapping with the wrong KEK, or a modified wrapped key, fails its integrity
// check (IntegrityError) instead of yielding a wrong key. The KEK's size picks AES-128/192/256;
// Albion's KEKs are 256-bit, the others exist for RFC 5649's test vectors.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "checkpoint/crypto/secret_bytes.h"
#include "runtime/base/error.h"

namespace albion::checkpoint {

// Wraps `key` (1 byte or more) under `kek` (16, 24 or 32 bytes). The result has
// 8 + 8*ceil(key.size()/8) bytes.
std::vector<std::uint8_t> wrap_key(const SecretBytes& kek, std::span<const std::uint8_t> key);

// Unwraps `wrapped`. Throws IntegrityError("<what>: ...") when its length is impossible or the
// integrity check fails; `what` names the thing being unwrapped (never key material).
SecretBytes unwrap_key(const SecretBytes& kek, std::span<const std::uint8_t> wrapped,
                       std::string_view what);

}  // namespace albion::checkpoint
