// File: checkpoint/crypto/openssl_handles.h
// Owning handles for the OpenSSL objects checkpoint/ uses: each is a unique_ptr whose deleter is
// the matching *_free, so no path (including a throw) leaks a context that holds a key schedule.
#pragma once

#include <openssl/evp.h>

#include <memory>

namespace albion::checkpoint {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }  // also cleanses it
};
struct CipherFree {
  void operator()(EVP_CIPHER* cipher) const { EVP_CIPHER_free(cipher); }
};

using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using CipherPtr = std::unique_ptr<EVP_CIPHER, CipherFree>;

// EVP_CIPHER_fetch / EVP_CIPHER_CTX_new that throw SystemError instead of returning null.
CipherPtr fetch_cipher(const char* name);
CipherCtxPtr new_cipher_ctx();

}  // namespace albion::checkpoint
