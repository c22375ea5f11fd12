// File: checkpoint/library_versions.cpp
#include "checkpoint/library_versions.h"

#include <hdf5.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "runtime/base/check.h"

namespace albion::checkpoint {

std::string hdf5_version() {
  unsigned major = 0;
  unsigned minor = 0;
  unsigned release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return "unknown";
  return str_cat(major, ".", minor, ".", release);
}

std::string openssl_version() { return OpenSSL_version(OPENSSL_VERSION); }

bool openssl_has_required_ciphers() {
  bool ok = true;
  for (const char* name : {"AES-256-GCM", "AES-256-WRAP-PAD"}) {
    EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
    ok = ok && cipher != nullptr;
    EVP_CIPHER_free(cipher);
  }
  return ok;
}

}  // namespace albion::checkpoint
