// File: tests/checkpoint/keys/key_secrecy_test.cpp
// Keys never appear in exception messages, logs or the audit log. A known KEK (and a known DEK)
// go through every failing path we have; each message, everything written to stderr and the audit
// log afterwards are searched for the keys' hex (either case) and raw bytes.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/crypto/chunk_cipher.h"
#include "checkpoint/crypto/hex.h"
#include "checkpoint/crypto/key_wrap.h"
#include "checkpoint/keys/key_provider.h"
#include "runtime/base/log.h"
#include "tests/checkpoint/temp_dir.h"

namespace albion::checkpoint {
namespace {

using testing::TempDir;

// Distinctive keys, so an accidental match is impossible.
constexpr const char* kKekHex = "c0ffee00deadbeef0123456789abcdeff0e1d2c3b4a5968778695a4b3c2d1e0f";
constexpr const char* kDekHex = "5eed5eed5eed5eed1122334455667788a1b2c3d4e5f60718293a4b5c6d7e8f90";

std::string raw(const char* hex) {
  const SecretBytes bytes = *secret_from_hex(hex);
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

void expect_no_key(const std::string& text, const std::string& where) {
  for (const char* hex : {kKekHex, kDekHex}) {
    EXPECT_EQ(text.find(hex), std::string::npos) << where << ": " << text;
    EXPECT_EQ(text.find(upper(hex)), std::string::npos) << where;
    EXPECT_EQ(text.find(raw(hex)), std::string::npos) << where;
    // Half a key is still a leak.
    EXPECT_EQ(text.find(std::string(hex).substr(0, 32)), std::string::npos) << where;
    EXPECT_EQ(text.find(std::string(hex).substr(32)), std::string::npos) << where;
  }
}

TEST(KeySecrecy, NoFailingPathRevealsAKey) {
  TempDir dir;
  const auto key_path = dir / "kek.bin";
  testing::write_file(key_path, raw(kKekHex));
  ::chmod(key_path.c_str(), 0600);
  ::setenv("ALBION_SECRECY_KEK", kKekHex, 1);
  ::setenv("ALBION_SECRECY_KEK_LONG", (std::string(kKekHex) + "0").c_str(), 1);
  std::string nonhex = kKekHex;
  nonhex[63] = 'z';
  ::setenv("ALBION_SECRECY_KEK_NONHEX", nonhex.c_str(), 1);

  const auto provider = open_key_provider("file:" + key_path.string());
  const DataKey dek = DataKey::from_secret(*secret_from_hex(kDekHex));
  const auto wrapped = provider->wrap(dek);

  AuditLog audit(dir / "audit.jsonl", AuditIdentity{"host", "user", 0});
  std::vector<std::string> messages;
  const auto record = [&](const std::string& what, const std::function<void()>& failing) {
    try {
      failing();
      ADD_FAILURE() << what << " did not fail";
    } catch (const Error& error) {
      messages.push_back(error.what());
      log::error(what, ": ", error.what());
      audit.append({AuditAction::kRefusal, key_path.string(), provider->key_id(), AuditOutcome::kRefused,
                    error.what()});
    }
  };

  ::testing::internal::CaptureStderr();
  record("wrong KEK", [&] { open_key_provider("env:ALBION_SECRECY_KEK_LONG"); });
  record("non-hex KEK", [&] { open_key_provider("env:ALBION_SECRECY_KEK_NONHEX"); });
  record("key as spec", [&] { open_key_provider(kKekHex); });
  record("key as spec with prefix", [&] { open_key_provider(std::string("hex:") + kKekHex); });
  record("key pasted after env:", [&] { open_key_provider(std::string("env:") + kKekHex); });
  record("key pasted after file:", [&] { open_key_provider(std::string("file:") + upper(kKekHex)); });
  record("tampered wrap", [&] {
    auto bad = wrapped;
    bad[0] ^= 1;
    provider->unwrap(bad);
  });
  record("wrong KEK unwrap", [&] {
    ::setenv("ALBION_SECRECY_OTHER", std::string(64, 'b').c_str(), 1);
    open_key_provider("env:ALBION_SECRECY_OTHER")->unwrap(wrapped);
  });
  record("truncated wrap", [&] { provider->unwrap(std::span(wrapped).first(20)); });
  record("tampered chunk", [&] {
    ChunkCipher cipher(dek, "ckpt");
    auto sealed = cipher.seal({"f.h5", 0, "w", 0}, std::vector<std::uint8_t>(100, 7));
    sealed[3] ^= 1;
    cipher.open({"f.h5", 0, "w", 0}, sealed);
  });
  record("chunk under another key", [&] {
    ChunkCipher writer(dek, "ckpt");
    ChunkCipher reader(provider->unwrap(provider->wrap(DataKey::generate())), "ckpt");
    reader.open({"f.h5", 0, "w", 0}, writer.seal({"f.h5", 0, "w", 0}, std::vector<std::uint8_t>(10)));
  });
  ::chmod(key_path.c_str(), 0644);
  record("readable key file", [&] { open_key_provider("file:" + key_path.string()); });
  const std::string stderr_text = ::testing::internal::GetCapturedStderr();

  ASSERT_EQ(messages.size(), 12u);
  for (const std::string& message : messages) expect_no_key(message, "message");
  expect_no_key(stderr_text, "stderr");
  expect_no_key(testing::read_file(audit.path()), "audit log");
  // The key id does appear where it should, so the search above looks in the right places.
  EXPECT_NE(testing::read_file(audit.path()).find(provider->key_id()), std::string::npos);
}

}  // namespace
}  // namespace albion::checkpoint
