// File: checkpoint/crypto/openssl_handles.cpp
#include "checkpoint/crypto/openssl_handles.h"

#include "checkpoint/crypto/openssl_error.h"

namespace albion::checkpoint {

CipherPtr fetch_cipher(const char* name) {
  CipherPtr cipher(EVP_CIPHER_fetch(nullptr, name, nullptr));
  if (!cipher) throw_openssl_error(str_cat("EVP_CIPHER_fetch(", name, ")"));
  return cipher;
}

CipherCtxPtr new_cipher_ctx() {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) throw_openssl_error("EVP_CIPHER_CTX_new");
  return ctx;
}

}  // namespace albion::checkpoint
