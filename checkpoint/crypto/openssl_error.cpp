// File: checkpoint/crypto/openssl_error.cpp
#include "checkpoint/crypto/openssl_error.h"

#include <openssl/err.h>

#include <array>

namespace albion::checkpoint {

std::string drain_openssl_errors() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    std::array<char, 256> buffer{};
    ERR_error_string_n(code, buffer.data(), buffer.size());
    if (!text.empty()) text += "; ";
    text += buffer.data();
  }
  return text.empty() ? "no OpenSSL error queued" : text;
}

void throw_openssl_error(const std::string& what) {
  throw SystemError(str_cat(what, " failed: ", drain_openssl_errors()));
}

void clear_openssl_errors() { ERR_clear_error(); }

}  // namespace albion::checkpoint
