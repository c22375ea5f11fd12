// File: checkpoint/crypto/hex.cpp
#include "checkpoint/crypto/hex.h"

namespace albion::checkpoint {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string to_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xF];
  }
  return out;
}

std::optional<SecretBytes> secret_from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  SecretBytes bytes(hex.size() / 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const int high = hex_value(hex[2 * i]);
    const int low = hex_value(hex[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;  // `bytes` wipes itself
    bytes.data()[i] = static_cast<std::uint8_t>(high << 4 | low);
  }
  return bytes;
}

std::optional<std::vector<std::uint8_t>> bytes_from_hex(std::string_view hex) {
  std::optional<SecretBytes> bytes = secret_from_hex(hex);
  if (!bytes) return std::nullopt;
  return std::vector<std::uint8_t>(bytes->view().begin(), bytes->view().end());
}

}  // namespace albion::checkpoint
