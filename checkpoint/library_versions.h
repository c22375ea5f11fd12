// File: checkpoint/library_versions.h
// Versions of the storage and crypto libraries actually loaded, for `albion doctor`.
#pragma once

#include <string>

namespace albion::checkpoint {

std::string hdf5_version();     // e.g. "1.10.8", from H5get_libversion
std::string openssl_version();  // e.g. "OpenSSL 3.0.19 27 Jan 2026", from OpenSSL_version

// True when the loaded libcrypto provides AES-256-GCM and AES key wrap with padding (RFC 5649),
// the two primitives checkpoints rely on.
bool openssl_has_required_ciphers();

}  // namespace albion::checkpoint
