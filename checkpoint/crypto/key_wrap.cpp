// File: checkpoint/crypto/key_wrap.cpp
#include "checkpoint/crypto/key_wrap.h"

#include <openssl/evp.h>

#include "checkpoint/crypto/openssl_error.h"
#include "checkpoint/crypto/openssl_handles.h"

namespace albion::checkpoint {
namespace {

constexpr std::size_t kSemiblock = 8;
// Larger than any key we wrap; keeps every length within EVP's int.
constexpr std::size_t kMaxWrappedKeyBytes = 4096;

const char* wrap_cipher_name(const SecretBytes& kek) {
  switch (kek.size()) {
    case 16: return "AES-128-WRAP-PAD";
    case 24: return "AES-192-WRAP-PAD";
    case 32: return "AES-256-WRAP-PAD";
    default: break;
  }
  ALBION_CHECK(false, "key-encryption key of ", kek.size(), " bytes (expected 16, 24 or 32)");
  return nullptr;
}

// A context keyed with `kek` for wrapping (encrypt = 1) or unwrapping (encrypt = 0). Fetched
// (provider) ciphers do not need EVP_CIPHER_CTX_FLAG_WRAP_ALLOW; only OpenSSL's legacy
// EVP_aes_*_wrap_pad objects check it. Setting it anyway keeps this correct if the cipher ever
// comes from the legacy path.
CipherCtxPtr wrap_context(const SecretBytes& kek, int encrypt) {
  CipherPtr cipher = fetch_cipher(wrap_cipher_name(kek));
  CipherCtxPtr ctx = new_cipher_ctx();
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex2(ctx.get(), cipher.get(), kek.data(), nullptr, encrypt, nullptr) != 1) {
    throw_openssl_error(str_cat("EVP_CipherInit_ex2(", wrap_cipher_name(kek), ")"));
  }
  return ctx;
}

}  // namespace

std::vector<std::uint8_t> wrap_key(const SecretBytes& kek, std::span<const std::uint8_t> key) {
  ALBION_CHECK(!key.empty() && key.size() <= kMaxWrappedKeyBytes, "cannot wrap a key of ",
               key.size(), " bytes");
  CipherCtxPtr ctx = wrap_context(kek, 1);
  const std::size_t padded = (key.size() + kSemiblock - 1) / kSemiblock * kSemiblock;
  std::vector<std::uint8_t> wrapped(padded + kSemiblock);
  int written = 0;
  if (EVP_CipherUpdate(ctx.get(), wrapped.data(), &written, key.data(), static_cast<int>(key.size())) != 1) {
    throw_openssl_error("EVP_CipherUpdate(key wrap)");
  }
  int final_written = 0;
  if (EVP_CipherFinal_ex(ctx.get(), wrapped.data() + written, &final_written) != 1) {
    throw_openssl_error("EVP_CipherFinal_ex(key wrap)");
  }
  ALBION_CHECK(static_cast<std::size_t>(written + final_written) == wrapped.size(), "key wrap wrote ",
               written + final_written, " bytes, expected ", wrapped.size());
  return wrapped;
}

SecretBytes unwrap_key(const SecretBytes& kek, std::span<const std::uint8_t> wrapped,
                       std::string_view what) {
  ALBION_CHECK_AS(IntegrityError,
                  wrapped.size() >= 2 * kSemiblock && wrapped.size() % kSemiblock == 0 &&
                      wrapped.size() <= kMaxWrappedKeyBytes + kSemiblock,
                  what, ": wrapped key has ", wrapped.size(),
                  " bytes, not a valid RFC 5649 length (a multiple of 8, at least 16)");
  CipherCtxPtr ctx = wrap_context(kek, 0);
  SecretBytes key(wrapped.size());  // the unpadded key is shorter; trimmed below
  int written = 0;
  int final_written = 0;
  const bool ok =
      EVP_CipherUpdate(ctx.get(), key.data(), &written, wrapped.data(), static_cast<int>(wrapped.size())) == 1 &&
      written > 0 && EVP_CipherFinal_ex(ctx.get(), key.data() + written, &final_written) == 1;
  if (!ok) {
    clear_openssl_errors();
    throw IntegrityError(str_cat(what, ": AES key unwrap (RFC 5649) failed its integrity check "
                                       "(wrong key-encryption key, or the wrapped key was modified)"));
  }
  return SecretBytes::copy_of(key.view().first(static_cast<std::size_t>(written + final_written)));
}

}  // namespace albion::checkpoint
