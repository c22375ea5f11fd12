// File: tests/checkpoint/crypto/key_wrap_test.cpp
// RFC 5649 key wrap with padding: the RFC's own test vectors (192-bit KEK, through the same code
// path as our 256-bit KEKs), AES-256 round trips of every length, and every tamper detected.
#include "checkpoint/crypto/key_wrap.h"

#include <gtest/gtest.h>

#include "checkpoint/crypto/hex.h"

namespace albion::checkpoint {
namespace {

SecretBytes from_hex(std::string_view hex) { return *secret_from_hex(hex); }

std::vector<std::uint8_t> bytes_from_hex(std::string_view hex) {
  const SecretBytes secret = from_hex(hex);
  return {secret.view().begin(), secret.view().end()};
}

// RFC 5649 section 6.
constexpr std::string_view kRfcKek = "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8";

TEST(KeyWrap, Rfc5649TwentyOctetKey) {
  const SecretBytes kek = from_hex(kRfcKek);
  const auto key = bytes_from_hex("c37b7e6492584340bed12207808941155068f738");
  const auto wrapped = wrap_key(kek, key);
  EXPECT_EQ(to_hex(wrapped), "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a");
  EXPECT_EQ(to_hex(unwrap_key(kek, wrapped, "rfc").view()), "c37b7e6492584340bed12207808941155068f738");
}

TEST(KeyWrap, Rfc5649SevenOctetKey) {
  const SecretBytes kek = from_hex(kRfcKek);
  const auto wrapped = wrap_key(kek, bytes_from_hex("466f7250617369"));
  EXPECT_EQ(to_hex(wrapped), "afbeb0f07dfbf5419200f2ccb50bb24f");
  EXPECT_EQ(to_hex(unwrap_key(kek, wrapped, "rfc").view()), "466f7250617369");
}

TEST(KeyWrap, Aes256RoundTripsEveryLength) {
  const SecretBytes kek = SecretBytes::random(32);
  for (std::size_t length = 1; length <= 65; ++length) {
    const SecretBytes key = SecretBytes::random(length);
    const auto wrapped = wrap_key(kek, key.view());
    EXPECT_EQ(wrapped.size(), 8 + (length + 7) / 8 * 8) << length;
    EXPECT_TRUE(unwrap_key(kek, wrapped, "test") == key) << length;
  }
}

TEST(KeyWrap, EveryFlippedBitOfAWrappedDataKeyFails) {
  const SecretBytes kek = SecretBytes::random(32);
  const auto wrapped = wrap_key(kek, SecretBytes::random(32).view());
  ASSERT_EQ(wrapped.size(), 40u);
  for (std::size_t i = 0; i < wrapped.size() * 8; ++i) {
    auto bad = wrapped;
    bad[i / 8] ^= static_cast<std::uint8_t>(1u << (i % 8));
    EXPECT_THROW(unwrap_key(kek, bad, "test"), IntegrityError) << "bit " << i;
  }
}

TEST(KeyWrap, WrongKekAndBadLengthsFail) {
  const SecretBytes kek = SecretBytes::random(32);
  const auto wrapped = wrap_key(kek, SecretBytes::random(32).view());
  try {
    unwrap_key(SecretBytes::random(32), wrapped, "data key of ckpt-a");
    FAIL() << "unwrapped with the wrong KEK";
  } catch (const IntegrityError& error) {
    EXPECT_EQ(std::string(error.what()).rfind("data key of ckpt-a: ", 0), 0u) << error.what();
  }
  for (std::size_t length : {0u, 8u, 15u, 17u, 39u, 41u}) {
    std::vector<std::uint8_t> bad(wrapped.begin(), wrapped.begin() + std::min<std::size_t>(length, 40));
    bad.resize(length);
    EXPECT_THROW(unwrap_key(kek, bad, "test"), IntegrityError) << length;
  }
  // A truncated but still well-formed length (32 of 40 bytes) fails the integrity check too.
  EXPECT_THROW(unwrap_key(kek, std::span(wrapped).first(32), "test"), IntegrityError);
}

}  // namespace
}  // namespace albion::checkpoint
