// File: checkpoint/keys/key_id.cpp
#include "checkpoint/keys/key_id.h"

#include <string_view>
#include <vector>

#include "checkpoint/crypto/hex.h"
#include "checkpoint/crypto/key_wrap.h"
#include "checkpoint/crypto/sha256.h"

namespace albion::checkpoint {

std::string key_id_from_wrapped_label(std::span<const std::uint8_t> wrapped_label) {
  constexpr std::string_view kDomain = "albion-key-id-v1";
  std::vector<std::uint8_t> message(kDomain.begin(), kDomain.end());
  message.insert(message.end(), wrapped_label.begin(), wrapped_label.end());
  const Sha256Digest digest = sha256(message);
  return to_hex(std::span(digest).first(16));
}

std::string key_id_of(const SecretBytes& kek) {
  return key_id_from_wrapped_label(wrap_key(kek, kKeyIdLabel));
}

}  // namespace albion::checkpoint
