// File: tests/checkpoint/keys/key_provider_test.cpp
// file: and env: key providers: permission and size refusals, hex parsing, wrap/unwrap round
// trips, wrong-key detection, and key ids that agree across providers and match a known answer.
#include "checkpoint/keys/key_provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "checkpoint/crypto/hex.h"
#include "checkpoint/keys/key_file.h"
#include "checkpoint/keys/key_id.h"
#include "tests/checkpoint/temp_dir.h"

namespace albion::checkpoint {
namespace {

using testing::TempDir;
using testing::write_file;

std::string counting_key_bytes() {
  std::string key(32, '\0');
  for (int i = 0; i < 32; ++i) key[i] = static_cast<char>(i);
  return key;
}
constexpr const char* kCountingKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
// Independently computed (Python `cryptography`) from Note [Key id].
constexpr const char* kCountingKeyId = "aa01503bff24294d05feaf3b5e61f5f3";

std::filesystem::path key_file(const TempDir& dir, const std::string& bytes, mode_t mode) {
  const auto path = dir / "kek.bin";
  write_file(path, bytes);
  ::chmod(path.c_str(), mode);
  return path;
}

template <typename Error>
std::string message_of(const std::string& spec) {
  try {
    open_key_provider(spec);
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << spec << " was accepted";
  return "";
}

TEST(FileKeyProvider, LoadsAnOwnerOnlyKeyWithKnownId) {
  TempDir dir;
  const auto path = key_file(dir, counting_key_bytes(), 0600);
  const auto provider = open_key_provider("file:" + path.string());
  EXPECT_EQ(provider->key_id(), kCountingKeyId);
  EXPECT_EQ(provider->spec(), "file:" + path.string());
  ::chmod(path.c_str(), 0400);
  EXPECT_EQ(open_key_provider("file:" + path.string())->key_id(), kCountingKeyId);
}

TEST(FileKeyProvider, RefusesKeysOthersCanAccess) {
  TempDir dir;
  for (mode_t mode : {0640, 0604, 0620, 0602, 0660, 0644, 0610, 0601}) {
    const auto path = key_file(dir, counting_key_bytes(), mode);
    const std::string message = message_of<UsageError>("file:" + path.string());
    EXPECT_NE(message.find("chmod 600 " + path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(path.string()), std::string::npos);
  }
}

TEST(FileKeyProvider, RefusesWrongSizesMissingFilesAndDirectories) {
  TempDir dir;
  for (std::size_t size : {0u, 1u, 31u, 33u, 64u}) {
    const auto path = key_file(dir, std::string(size, 'k'), 0600);
    EXPECT_NE(message_of<UsageError>("file:" + path.string()).find("exactly 32 raw bytes"), std::string::npos);
  }
  // 64 hex characters in a key file is a common mistake: still refused (it is 64 bytes).
  const auto hex_file = key_file(dir, kCountingKeyHex, 0600);
  EXPECT_NE(message_of<UsageError>("file:" + hex_file.string()).find("has 64 bytes"), std::string::npos);
  EXPECT_NE(message_of<UsageError>("file:" + (dir / "missing").string()).find("No such file"), std::string::npos);
  ::chmod(dir.path().c_str(), 0700);
  EXPECT_NE(message_of<UsageError>("file:" + dir.path().string()).find("not a regular file"), std::string::npos);
  message_of<UsageError>("file:");
}

TEST(EnvKeyProvider, ReadsHexAndAgreesWithTheFileProvider) {
  ::setenv("ALBION_TEST_KEK_GOOD", kCountingKeyHex, 1);
  const auto provider = open_key_provider("env:ALBION_TEST_KEK_GOOD");
  EXPECT_EQ(provider->key_id(), kCountingKeyId);
  std::string upper = kCountingKeyHex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  ::setenv("ALBION_TEST_KEK_UPPER", upper.c_str(), 1);
  EXPECT_EQ(open_key_provider("env:ALBION_TEST_KEK_UPPER")->key_id(), kCountingKeyId);
}

TEST(EnvKeyProvider, RefusesMissingShortLongAndNonHexValues) {
  ::unsetenv("ALBION_TEST_KEK_UNSET");
  EXPECT_NE(message_of<UsageError>("env:ALBION_TEST_KEK_UNSET").find("is not set"), std::string::npos);
  ::setenv("ALBION_TEST_KEK_SHORT", std::string(kCountingKeyHex).substr(2).c_str(), 1);
  EXPECT_NE(message_of<UsageError>("env:ALBION_TEST_KEK_SHORT").find("found 62 characters"), std::string::npos);
  ::setenv("ALBION_TEST_KEK_LONG", (std::string(kCountingKeyHex) + "00").c_str(), 1);
  message_of<UsageError>("env:ALBION_TEST_KEK_LONG");
  std::string bad = kCountingKeyHex;
  bad[10] = 'x';
  ::setenv("ALBION_TEST_KEK_NONHEX", bad.c_str(), 1);
  EXPECT_NE(message_of<UsageError>("env:ALBION_TEST_KEK_NONHEX").find("not a hex digit"), std::string::npos);
  message_of<UsageError>("env:");
  message_of<UsageError>("env:BAD-NAME");
}

TEST(KeyProvider, UnknownSpecIsRefusedWithoutEchoingIt) {
  const std::string message = message_of<UsageError>(kCountingKeyHex);
  EXPECT_EQ(message.find(kCountingKeyHex), std::string::npos) << message;
  EXPECT_NE(message.find("file:PATH, env:VAR or pkcs11:URI"), std::string::npos);
  message_of<UsageError>("File:/tmp/x");
}

TEST(KeyProvider, WrapsAndUnwrapsAndDetectsTheWrongKey) {
  TempDir dir;
  const auto provider = open_key_provider("file:" + key_file(dir, counting_key_bytes(), 0600).string());
  const DataKey dek = DataKey::generate();
  const auto wrapped = provider->wrap(dek);
  EXPECT_EQ(wrapped.size(), 40u);
  EXPECT_TRUE(provider->unwrap(wrapped).secret() == dek.secret());

  ::setenv("ALBION_TEST_KEK_OTHER", std::string(64, 'a').c_str(), 1);
  const auto other = open_key_provider("env:ALBION_TEST_KEK_OTHER");
  EXPECT_NE(other->key_id(), provider->key_id());
  try {
    other->unwrap(wrapped);
    FAIL() << "unwrapped with the wrong KEK";
  } catch (const IntegrityError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("env:ALBION_TEST_KEK_OTHER"), std::string::npos) << message;
    EXPECT_NE(message.find(other->key_id()), std::string::npos) << message;
  }
  auto tampered = wrapped;
  tampered[20] ^= 4;
  EXPECT_THROW(provider->unwrap(tampered), IntegrityError);
}

TEST(KeyFile, GenerateIsOwnerOnlyAtomicAndRefusesToOverwrite) {
  TempDir dir;
  const auto path = dir / "new.key";
  const std::string id = generate_key_file(path, KeyFileOverwrite::kRefuse);
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_EQ(info.st_size, 32);
  EXPECT_EQ(open_key_provider("file:" + path.string())->key_id(), id);
  EXPECT_EQ(id.size(), 32u);

  const std::string before = testing::read_file(path);
  EXPECT_THROW(generate_key_file(path, KeyFileOverwrite::kRefuse), UsageError);
  EXPECT_EQ(testing::read_file(path), before);
  const std::string replaced = generate_key_file(path, KeyFileOverwrite::kReplace);
  EXPECT_NE(replaced, id);
  EXPECT_NE(testing::read_file(path), before);
  // No temporary file is left behind, on success or on refusal.
  int entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) entries += entry.exists();
  EXPECT_EQ(entries, 1);
  EXPECT_THROW(generate_key_file(dir / "no-such-dir" / "k", KeyFileOverwrite::kRefuse), UsageError);
  std::filesystem::create_directory(dir / "a-directory");
  EXPECT_THROW(generate_key_file(dir / "a-directory", KeyFileOverwrite::kReplace), UsageError);
}

TEST(KeyFile, GenerateIgnoresAPermissiveUmask) {
  TempDir dir;
  const mode_t old = ::umask(0);
  generate_key_file(dir / "k", KeyFileOverwrite::kRefuse);
  ::umask(old);
  struct stat info {};
  ASSERT_EQ(::stat((dir / "k").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
}

TEST(KeyId, IsAFingerprintNotKeyMaterial) {
  const SecretBytes kek = *secret_from_hex(kCountingKeyHex);
  const std::string id = key_id_of(kek);
  EXPECT_EQ(id, kCountingKeyId);
  EXPECT_EQ(std::string(kCountingKeyHex).find(id.substr(0, 8)), std::string::npos);
  EXPECT_NE(key_id_of(SecretBytes::random(32)), id);
}

}  // namespace
}  // namespace albion::checkpoint
