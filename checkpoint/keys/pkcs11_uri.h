// File: checkpoint/keys/pkcs11_uri.h
// The subset of RFC 7512 PKCS#11 URIs a key spec uses:
//   pkcs11:token=LABEL;object=LABEL[;id=%01%02][;serial=..][;manufacturer=..][;model=..]
//          [;type=secret-key]?module-path=/path/to/module.so[&pin-source=file:/path|&pin-value=PIN]
// Values are percent-decoded. An attribute we do not support is refused (RFC 7512 lets a
// consumer that does not understand an attribute match nothing, so we say so instead).
// The PIN is kept in SecretBytes and left out of `printable`, the form messages show.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "checkpoint/crypto/secret_bytes.h"
#include "runtime/base/error.h"

namespace albion::checkpoint {

struct Pkcs11Uri {
  std::optional<std::string> token;         // token label
  std::optional<std::string> manufacturer;  // token manufacturer id
  std::optional<std::string> serial;        // token serial number
  std::optional<std::string> model;         // token model
  std::optional<std::string> object;        // the key's CKA_LABEL
  std::optional<std::vector<std::uint8_t>> id;  // the key's CKA_ID
  std::string module_path;
  std::optional<std::string> pin_source;    // a file holding the PIN ("file:" prefix optional)
  std::optional<SecretBytes> pin_value;
  std::string printable;                    // the URI without pin-value
};

// Parses `uri` ("pkcs11:..."). UsageError naming the attribute for anything malformed, unknown or
// missing (module-path, a token selector and an object selector are required).
Pkcs11Uri parse_pkcs11_uri(std::string_view uri);

}  // namespace albion::checkpoint
