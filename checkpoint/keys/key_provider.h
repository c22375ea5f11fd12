// File: checkpoint/keys/key_provider.h
// A KeyProvider holds one key-encryption key (KEK) and never hands it out: callers get its
// fingerprint (key_id) and ask it to wrap or unwrap a checkpoint's DataKey (RFC 5649). Specs:
//   file:PATH    a 32-byte raw key file, mode 0600 or stricter (checkpoint/keys/key_file.h)
//   env:VAR      64 hex characters in environment variable VAR
//   pkcs11:URI   an AES key inside a PKCS#11 token (RFC 7512 URI); wrap and unwrap run in the token
// Nothing a provider puts in a message, a log or its key_id is key material.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/crypto/data_key.h"
#include "runtime/base/error.h"

namespace albion::checkpoint {

class KeyProvider {
 public:
  virtual ~KeyProvider() = default;

  // The spec the provider was opened from, safe to print (a PKCS#11 PIN is never part of it).
  virtual const std::string& spec() const = 0;
  // The KEK's fingerprint, stored in checkpoints and audit records (Note [Key id]).
  virtual const std::string& key_id() const = 0;
  // The DataKey wrapped under the KEK.
  virtual std::vector<std::uint8_t> wrap(const DataKey& dek) const = 0;
  // The DataKey inside `wrapped`; IntegrityError (naming spec and key id) for a wrong KEK or a
  // modified wrapped key.
  virtual DataKey unwrap(std::span<const std::uint8_t> wrapped) const = 0;
};

// Opens the provider a spec names. UsageError for an unknown scheme, a missing or badly
// protected key file, an unset or malformed variable. An unrecognised spec, or a key pasted after
// file: or env:, is not echoed back: a user who passes a raw key by mistake must not find it in
// the error message.
std::unique_ptr<KeyProvider> open_key_provider(std::string_view spec);

}  // namespace albion::checkpoint
