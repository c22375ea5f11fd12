// File: checkpoint/keys/pkcs11_key_provider.h
// The pkcs11: provider: the KEK is an AES key inside a PKCS#11 token (an HSM, or SoftHSM2 in
// tests) and never leaves it. Wrapping and unwrapping run in the token with C_WrapKey and
// C_UnwrapKey under AES key wrap with padding (RFC 5649), so wrapped keys are interchangeable with
// the file: and env: providers' for the same KEK, and so are key ids (Note [Key id]). The data key
// passes through the token only as a short-lived session object.
//
// The KEK must be a secret key that may wrap and unwrap and is not extractable; an extractable
// key is refused, since a key that can leave the token gives none of the token's guarantees.
#pragma once

#include <string_view>

#include "checkpoint/keys/key_provider.h"

namespace albion::checkpoint {

// Opens the key a pkcs11: URI names (checkpoint/keys/pkcs11_uri.h): loads the module, finds
// exactly one matching token and key, logs in if a PIN is given. UsageError for anything the user
// can fix (no such token or key, wrong PIN, unsuitable key); SystemError for a failing module.
std::unique_ptr<KeyProvider> open_pkcs11_key_provider(std::string_view uri);

}  // namespace albion::checkpoint
