// File: runtime/data/file_digest.cpp
#include "runtime/data/file_digest.h"

#include <cstring>
#include <fstream>
#include <vector>

#include "checkpoint/crypto/sha256.h"
#include "runtime/base/check.h"

namespace albion::data {

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ALBION_CHECK_AS(UsageError, in.good(), path, ": cannot open: ", std::strerror(errno));
  checkpoint::Sha256Stream digest;
  std::vector<char> buffer(4 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got > 0) digest.update(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
  }
  ALBION_CHECK_AS(UsageError, in.eof(), path, ": read error");
  return digest.finish_hex();
}

}  // namespace albion::data
