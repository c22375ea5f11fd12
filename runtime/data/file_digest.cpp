// File: runtime/data/file_digest.cpp
#include "runtime/data/file_digest.h"

#include <openssl/evp.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "runtime/base/check.h"

namespace albion::data {
namespace {

struct DigestContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
using DigestContext = std::unique_ptr<EVP_MD_CTX, DigestContextDeleter>;

DigestContext new_sha256() {
  DigestContext context(EVP_MD_CTX_new());
  ALBION_CHECK_AS(SystemError, context && EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) == 1,
                  "OpenSSL: cannot initialise SHA-256");
  return context;
}

std::string finish_hex(EVP_MD_CTX* context) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  ALBION_CHECK_AS(SystemError, EVP_DigestFinal_ex(context, digest, &length) == 1,
                  "OpenSSL: SHA-256 failed");
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return hex;
}

}  // namespace

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ALBION_CHECK_AS(UsageError, in.good(), path, ": cannot open: ", std::strerror(errno));
  DigestContext context = new_sha256();
  std::vector<char> buffer(4 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::streamsize got = in.gcount();
    if (got > 0) EVP_DigestUpdate(context.get(), buffer.data(), static_cast<std::size_t>(got));
  }
  ALBION_CHECK_AS(UsageError, in.eof(), path, ": read error");
  return finish_hex(context.get());
}

std::string sha256_hex(std::string_view bytes) {
  DigestContext context = new_sha256();
  EVP_DigestUpdate(context.get(), bytes.data(), bytes.size());
  return finish_hex(context.get());
}

}  // namespace albion::data
