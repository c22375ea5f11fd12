// File: checkpoint/keys/key_id.h
// Note [Key id]
// A KEK's id is a fingerprint that identifies it without revealing it:
//   key_id = hex(SHA-256("albion-key-id-v1" || KWP(KEK, kKeyIdLabel))[0:16])     (32 hex chars)
// KWP (RFC 5649 wrap) is deterministic and keyed, so the id is a keyed function of the KEK that an
// attacker cannot invert or compute without it, much as an HMAC of a fixed label would be. KWP is
// chosen over HMAC because it is the one operation every provider has: a PKCS#11 token computes it
// with C_WrapKey while the KEK stays inside, so the same KEK gets the same id whether it lives in a
// file, a variable or an HSM.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "checkpoint/crypto/secret_bytes.h"

namespace albion::checkpoint {

// A fixed, public 32-byte value that is wrapped to fingerprint a KEK; not a secret.
inline constexpr std::array<std::uint8_t, 32> kKeyIdLabel = {
    'a', 'l', 'b', 'i', 'o', 'n', ' ', 'k', 'e', 'y', '-', 'i', 'd', ' ', 'l', 'a',
    'b', 'e', 'l', ',', ' ', 'v', 'e', 'r', 's', 'i', 'o', 'n', ' ', '1', '.', '\n'};

// The id of a KEK, given KWP(KEK, kKeyIdLabel) from wherever the KEK lives.
std::string key_id_from_wrapped_label(std::span<const std::uint8_t> wrapped_label);

// The id of a KEK held in memory (file: and env: providers, `albion keys generate`).
std::string key_id_of(const SecretBytes& kek);

}  // namespace albion::checkpoint
