// File: tests/checkpoint/crypto/chunk_cipher_test.cpp
// AES-256-GCM chunk sealing: round trips, a known answer computed independently (Python's
// `cryptography` from the layouts in Note [Nonce uniqueness] and Note [Chunk associated data]),
// every tamper and misplacement failing with IntegrityError, and parallel sealing matching serial.
#include "checkpoint/crypto/chunk_cipher.h"

#include <gtest/gtest.h>

#include <numeric>
#include <thread>

#include "checkpoint/crypto/hex.h"

namespace albion::checkpoint {
namespace {

DataKey counting_key() {
  std::vector<std::uint8_t> bytes(32);
  std::iota(bytes.begin(), bytes.end(), std::uint8_t{0});
  return DataKey::from_secret(SecretBytes::copy_of(bytes));
}

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(seed + i * 31 + (i >> 8));
  return bytes;
}

std::vector<std::uint8_t> as_bytes(std::string_view text) { return {text.begin(), text.end()}; }

const ChunkId kId{"shard-00003.h5", 3, "model.wte", 17};

// Expects open() to throw IntegrityError, and returns its message.
std::string open_failure(ChunkCipher& cipher, const ChunkId& id, const std::vector<std::uint8_t>& sealed) {
  try {
    cipher.open(id, sealed);
  } catch (const IntegrityError& error) {
    return error.what();
  }
  ADD_FAILURE() << "open() accepted a bad chunk";
  return "";
}

TEST(ChunkCipher, KnownAnswer) {
  ChunkCipher cipher(counting_key(), "ckpt-0001");
  const auto sealed = cipher.seal(kId, as_bytes("albion known-answer chunk"));
  EXPECT_EQ(to_hex(sealed),
            "be92473e9bdbb3750fefdd792679f76175483e8ad938ead9ca78797118b865e4e72573e99c5d750599");
}

TEST(ChunkCipher, RoundTripsEverySize) {
  ChunkCipher cipher(DataKey::generate(), "ckpt-a");
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 4096u, (4u << 20) + 3u}) {
    const auto plaintext = pattern(size, 7);
    const auto sealed = cipher.seal(kId, plaintext);
    ASSERT_EQ(sealed.size(), size + kChunkTagBytes);
    if (size >= 16) {
      EXPECT_NE(std::vector(sealed.begin(), sealed.begin() + 16), std::vector(plaintext.begin(), plaintext.begin() + 16));
    }
    EXPECT_EQ(cipher.open(kId, sealed), plaintext) << size;
  }
}

TEST(ChunkCipher, SealsAndOpensInPlace) {
  ChunkCipher cipher(DataKey::generate(), "ckpt-a");
  const auto plaintext = pattern(1000, 3);
  std::vector<std::uint8_t> buffer(plaintext);
  buffer.resize(ChunkCipher::sealed_size(plaintext.size()));
  cipher.seal(kId, std::span(buffer).first(plaintext.size()), buffer);
  EXPECT_EQ(buffer, cipher.seal(kId, plaintext));
  cipher.open(kId, buffer, std::span(buffer).first(plaintext.size()));
  EXPECT_TRUE(std::equal(plaintext.begin(), plaintext.end(), buffer.begin()));
}

TEST(ChunkCipher, NonceFollowsPosition) {
  // Same plaintext at different positions must give unrelated ciphertexts (different nonces);
  // the same position gives the same bytes (the nonce is derived, not drawn).
  ChunkCipher cipher(DataKey::generate(), "ckpt-a");
  const auto plaintext = pattern(64, 1);
  const auto base = cipher.seal(kId, plaintext);
  EXPECT_EQ(cipher.seal(kId, plaintext), base);
  for (ChunkId other : {ChunkId{kId.file_name, 4, kId.tensor_name, 17}, ChunkId{kId.file_name, 3, kId.tensor_name, 18}}) {
    const auto moved = cipher.seal(other, plaintext);
    EXPECT_NE(std::vector(moved.begin(), moved.begin() + 64), std::vector(base.begin(), base.begin() + 64));
  }
}

TEST(ChunkCipher, EveryFlippedByteFails) {
  ChunkCipher cipher(DataKey::generate(), "ckpt-a");
  const auto sealed = cipher.seal(kId, pattern(100, 9));
  for (std::size_t i = 0; i < sealed.size(); ++i) {  // ciphertext bytes, then tag bytes
    auto bad = sealed;
    bad[i] ^= 0x01;
    const std::string message = open_failure(cipher, kId, bad);
    EXPECT_NE(message.find("tag check failed"), std::string::npos) << i << ": " << message;
  }
}

TEST(ChunkCipher, FailureNamesTheChunkAndZeroesOutput) {
  ChunkCipher cipher(DataKey::generate(), "ckpt-a");
  auto sealed = cipher.seal(kId, pattern(64, 9));
  sealed[5] ^= 0x80;
  std::vector<std::uint8_t> plaintext(64, 0xAA);
  try {
    cipher.open(kId, sealed, plaintext);
    FAIL() << "tampered chunk opened";
  } catch (const IntegrityError& error) {
    const std::string message = error.what();
    for (const char* part : {"ckpt-a", "shard-00003.h5", "model.wte", "chunk 17", "AES-256-GCM"}) {
      EXPECT_NE(message.find(part), std::string::npos) << part << " in " << message;
    }
  }
  EXPECT_EQ(plaintext, std::vector<std::uint8_t>(64, 0));  // nothing unauthenticated leaks out
}

TEST(ChunkCipher, EveryMisplacementFails) {
  const DataKey key = DataKey::generate();
  ChunkCipher cipher(key, "ckpt-a");
  const auto sealed = cipher.seal(kId, pattern(256, 5));
  const ChunkId moved[] = {
      {"shard-00004.h5", 3, "model.wte", 17},     // another file name
      {"shard-00003.h5", 4, "model.wte", 17},     // another file index
      {"shard-00003.h5", 3, "model.wpe", 17},     // another tensor
      {"shard-00003.h5", 3, "model.wte", 16},     // another chunk index (reordered)
      {"shard-00003.h5", 3, "model.wte", 17ull << 32},
  };
  for (const ChunkId& id : moved) open_failure(cipher, id, sealed);
  // The same key under another checkpoint id: a chunk copied from another checkpoint.
  ChunkCipher other_checkpoint(key, "ckpt-b");
  open_failure(other_checkpoint, kId, sealed);
  // A fresh key: the wrong key.
  ChunkCipher wrong_key(DataKey::generate(), "ckpt-a");
  open_failure(wrong_key, kId, sealed);
}

TEST(ChunkCipher, SwappedChunksFail) {
  ChunkCipher cipher(DataKey::generate(), "ckpt-a");
  const ChunkId first{"f.h5", 0, "w", 0};
  const ChunkId second{"f.h5", 0, "w", 1};
  const auto a = cipher.seal(first, pattern(128, 1));
  const auto b = cipher.seal(second, pattern(128, 2));
  open_failure(cipher, first, b);
  open_failure(cipher, second, a);
}

TEST(ChunkCipher, TruncatedAndExtendedChunksFail) {
  ChunkCipher cipher(DataKey::generate(), "ckpt-a");
  const auto sealed = cipher.seal(kId, pattern(128, 1));
  open_failure(cipher, kId, std::vector(sealed.begin(), sealed.end() - 1));
  open_failure(cipher, kId, std::vector(sealed.begin() + 1, sealed.end()));
  auto longer = sealed;
  longer.push_back(0);
  open_failure(cipher, kId, longer);
  EXPECT_NE(open_failure(cipher, kId, std::vector<std::uint8_t>(15)).find("truncated"), std::string::npos);
  open_failure(cipher, kId, std::vector<std::uint8_t>(16));  // an empty chunk with a forged tag
}

TEST(ChunkCipher, ParallelSealingMatchesSerial) {
  // The pool model: one DataKey shared read-only, one ChunkCipher per thread.
  const DataKey key = DataKey::generate();
  constexpr int kThreads = 4;
  constexpr int kChunksPerThread = 16;
  std::vector<std::vector<std::uint8_t>> parallel(kThreads * kChunksPerThread);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ChunkCipher cipher(key, "ckpt-p");
      for (int c = t; c < kThreads * kChunksPerThread; c += kThreads) {
        parallel[c] = cipher.seal({"f.h5", 0, "w", static_cast<std::uint64_t>(c)}, pattern(65536, static_cast<std::uint8_t>(c)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ChunkCipher serial(key, "ckpt-p");
  for (int c = 0; c < kThreads * kChunksPerThread; ++c) {
    const ChunkId id{"f.h5", 0, "w", static_cast<std::uint64_t>(c)};
    EXPECT_EQ(parallel[c], serial.seal(id, pattern(65536, static_cast<std::uint8_t>(c)))) << c;
    EXPECT_EQ(serial.open(id, parallel[c]), pattern(65536, static_cast<std::uint8_t>(c)));
  }
}

TEST(DataKey, FreshKeysDifferAndSizeIsChecked) {
  EXPECT_FALSE(DataKey::generate().secret() == DataKey::generate().secret());
  EXPECT_EQ(DataKey::generate().secret().size(), kDataKeyBytes);
  EXPECT_THROW(DataKey::from_secret(SecretBytes(31)), IntegrityError);
  EXPECT_THROW(DataKey::from_secret(SecretBytes(33)), IntegrityError);
}

TEST(SecretBytes, MoveLeavesSourceEmpty) {
  SecretBytes a = SecretBytes::random(32);
  const SecretBytes copy = SecretBytes::copy_of(a.view());
  SecretBytes b = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_TRUE(b == copy);
  EXPECT_TRUE(secret_from_hex("00ff10").has_value());
  EXPECT_FALSE(secret_from_hex("0g").has_value());
  EXPECT_FALSE(secret_from_hex("abc").has_value());
}

}  // namespace
}  // namespace albion::checkpoint
