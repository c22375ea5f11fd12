// File: tests/checkpoint/keys/pkcs11_key_provider_test.cpp
// The pkcs11: provider against a real SoftHSM2 token made for the test (softhsm2-util and
// pkcs11-tool in a private SOFTHSM2_CONF directory): round trips with the KEK inside the token,
// interoperability with the file: provider for the same key (same wrapped bytes, same key id),
// wrong-key and tamper detection, and every refusal. Also the RFC 7512 URI parser.
#include "checkpoint/keys/pkcs11_key_provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/format/checkpoint_writer.h"
#include "checkpoint/keys/local_key_provider.h"
#include "checkpoint/keys/pkcs11_uri.h"
#include "tests/checkpoint/temp_dir.h"

namespace albion::checkpoint {
namespace {

using testing::TempDir;

constexpr const char* kModule = "/usr/lib/softhsm/libsofthsm2.so";
constexpr const char* kPin = "87654321";

std::string counting_key() {
  std::string key(32, '\0');
  for (int i = 0; i < 32; ++i) key[i] = static_cast<char>(i);
  return key;
}

void run(const std::string& command) {
  const int status = std::system((command + " > /dev/null 2>&1").c_str());
  ASSERT_EQ(status, 0) << command;
}

class Pkcs11KeyProviderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto conf = *dir_ / "softhsm2.conf";
    std::filesystem::create_directory(*dir_ / "tokens");
    testing::write_file(conf, "directories.tokendir = " + (*dir_ / "tokens").string() +
                                  "\nobjectstore.backend = file\nlog.level = ERROR\n");
    // SoftHSM2 reads its configuration from this variable, in this process and the tools.
    ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);
    const std::string tool = std::string("pkcs11-tool --module ") + kModule +
                             " --token-label albion-test --login --pin " + kPin;
    run("softhsm2-util --init-token --free --label albion-test --so-pin 12345678 --pin " + std::string(kPin));
    run(tool + " --keygen --key-type AES:32 --label kek --usage-wrap --sensitive --private");
    run(tool + " --keygen --key-type AES:32 --label other --usage-wrap --sensitive --private");
    run(tool + " --keygen --key-type AES:32 --label leaky --usage-wrap --extractable --private");
    run(tool + " --keygen --key-type AES:16 --label short --usage-wrap --sensitive --private");
    const auto known = *dir_ / "known.bin";
    testing::write_file(known, counting_key());
    run(tool + " --write-object " + known.string() +
        " --type secrkey --key-type AES:32 --label known --usage-wrap --sensitive --private");
    std::filesystem::remove(known);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string uri(const std::string& object, const std::string& extra = std::string("&pin-value=") + kPin) {
    return "pkcs11:token=albion-test;object=" + object + "?module-path=" + kModule + extra;
  }

  static TempDir* dir_;
};

TempDir* Pkcs11KeyProviderTest::dir_ = nullptr;

// A whole checkpoint with its DEK wrapped inside the token: saved, authenticated, read back; the
// same checkpoint refuses a different token key.
TEST_F(Pkcs11KeyProviderTest, CheckpointRoundTripWithTheKekInTheToken) {
  const auto provider = open_key_provider(uri("kek"));
  std::vector<float> values(5000);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i);
  const std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(values.data()), values.size() * 4);
  SingleProcessGroup group;
  CheckpointOptions options;
  options.directory = *dir_ / "checkpoints";
  options.key = provider.get();
  const auto path = CheckpointWriter(options, group).save({7, {{"model.w", "F32", {5000}, 0, 5000, bytes}}, "", "{}", 1});
  CheckpointReader reader(path, provider.get());
  EXPECT_EQ(reader.manifest().header.key_id, provider->key_id());
  reader.verify_all();
  std::vector<float> back(values.size());
  reader.read("model.w", 0, 5000, {reinterpret_cast<std::uint8_t*>(back.data()), back.size() * 4});
  EXPECT_EQ(back, values);
  const auto other = open_key_provider(uri("other"));
  EXPECT_THROW(CheckpointReader(path, other.get()), IntegrityError);
}

TEST_F(Pkcs11KeyProviderTest, WrapsAndUnwrapsInsideTheToken) {
  const auto provider = open_key_provider(uri("kek"));
  EXPECT_EQ(provider->key_id().size(), 32u);
  EXPECT_EQ(provider->spec().find(kPin), std::string::npos) << provider->spec();
  const DataKey dek = DataKey::generate();
  const auto wrapped = provider->wrap(dek);
  EXPECT_EQ(wrapped.size(), 40u);
  EXPECT_TRUE(provider->unwrap(wrapped).secret() == dek.secret());
  // A second provider on the same module (as rotate-key opens old and new keys) shares it.
  const auto other = open_key_provider(uri("other"));
  EXPECT_NE(other->key_id(), provider->key_id());
  EXPECT_TRUE(other->unwrap(other->wrap(dek)).secret() == dek.secret());
  EXPECT_TRUE(provider->unwrap(wrapped).secret() == dek.secret());
}

TEST_F(Pkcs11KeyProviderTest, AgreesWithTheFileProviderForTheSameKey) {
  // The token runs RFC 5649 exactly as OpenSSL does: same key id, interchangeable wrapped keys.
  const auto token = open_key_provider(uri("known"));
  TempDir dir;
  const auto path = dir / "known.bin";
  testing::write_file(path, counting_key());
  ::chmod(path.c_str(), 0600);
  const auto file = open_key_provider("file:" + path.string());
  EXPECT_EQ(token->key_id(), file->key_id());
  EXPECT_EQ(token->key_id(), "aa01503bff24294d05feaf3b5e61f5f3");
  const DataKey dek = DataKey::generate();
  EXPECT_EQ(token->wrap(dek), file->wrap(dek));
  EXPECT_TRUE(file->unwrap(token->wrap(dek)).secret() == dek.secret());
  EXPECT_TRUE(token->unwrap(file->wrap(dek)).secret() == dek.secret());
}

TEST_F(Pkcs11KeyProviderTest, WrongKeyAndTamperingAreIntegrityErrors) {
  const auto provider = open_key_provider(uri("kek"));
  const auto other = open_key_provider(uri("other"));
  const auto wrapped = provider->wrap(DataKey::generate());
  try {
    other->unwrap(wrapped);
    FAIL() << "unwrapped with the wrong KEK";
  } catch (const IntegrityError& error) {
    EXPECT_NE(std::string(error.what()).find(other->key_id()), std::string::npos) << error.what();
    EXPECT_EQ(std::string(error.what()).find(kPin), std::string::npos) << error.what();
  }
  for (std::size_t i = 0; i < wrapped.size(); i += 7) {
    auto bad = wrapped;
    bad[i] ^= 0x10;
    EXPECT_THROW(provider->unwrap(bad), IntegrityError) << i;
  }
  EXPECT_THROW(provider->unwrap(std::span(wrapped).first(36)), IntegrityError);
  EXPECT_THROW(provider->unwrap(std::span(wrapped).first(32)), IntegrityError);
}

TEST_F(Pkcs11KeyProviderTest, PinFromAFile) {
  TempDir dir;
  const auto pin = dir / "pin";
  testing::write_file(pin, std::string(kPin) + "\n");
  ::chmod(pin.c_str(), 0640);  // a PIN others can read is refused, as a key file would be
  EXPECT_THROW(open_key_provider(uri("kek", "&pin-source=file:" + pin.string())), UsageError);
  ::chmod(pin.c_str(), 0600);
  EXPECT_EQ(open_key_provider(uri("kek", "&pin-source=file:" + pin.string()))->key_id(),
            open_key_provider(uri("kek"))->key_id());
}

TEST_F(Pkcs11KeyProviderTest, RefusesWhatTheUserMustFix) {
  const auto refused = [](const std::string& spec, const std::string& expected) {
    try {
      open_key_provider(spec);
      ADD_FAILURE() << spec << " was accepted";
    } catch (const UsageError& error) {
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
      EXPECT_EQ(std::string(error.what()).find("pin-value"), std::string::npos) << error.what();
    }
  };
  refused(uri("kek", "&pin-value=00000000"), "CKR_PIN_INCORRECT");
  refused(uri("kek", ""), "no secret key matches");  // private objects need a login
  refused(uri("missing"), "no secret key matches");
  refused("pkcs11:token=nope;object=kek?module-path=" + std::string(kModule) + "&pin-value=" + kPin, "no token matches");
  refused(uri("leaky"), "extractable");
  refused(uri("short"), "not 256 bits");
  refused("pkcs11:token=albion-test;object=kek?module-path=/nonexistent/module.so", "cannot load PKCS#11 module");
  refused("pkcs11:token=albion-test;object=kek?module-path=/usr/lib/x86_64-linux-gnu/libc.so.6", "not a PKCS#11 module");
}

TEST(Pkcs11Uri, ParsesTheAttributesWeUse) {
  const Pkcs11Uri uri = parse_pkcs11_uri(
      "pkcs11:token=My%20Token;object=kek;id=%01%ff;type=secret-key?module-path=/m.so&pin-value=12%3B34");
  EXPECT_EQ(uri.token, "My Token");
  EXPECT_EQ(uri.object, "kek");
  EXPECT_EQ(uri.id, (std::vector<std::uint8_t>{0x01, 0xff}));
  EXPECT_EQ(uri.module_path, "/m.so");
  ASSERT_TRUE(uri.pin_value.has_value());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(uri.pin_value->data()), uri.pin_value->size()), "12;34");
  EXPECT_EQ(uri.printable, "pkcs11:token=My%20Token;object=kek;id=%01%ff;type=secret-key?module-path=/m.so");
}

TEST(Pkcs11Uri, RefusesMalformedUnknownAndIncompleteUris) {
  for (const char* bad : {
           "pkcs11:token=t;object=k",                             // no module-path
           "pkcs11:object=k?module-path=/m.so",                  // no token
           "pkcs11:token=t?module-path=/m.so",                   // no object
           "pkcs11:token=t;object=k;slot-id=3?module-path=/m.so",  // unsupported attribute
           "pkcs11:token=t;object=k;type=private?module-path=/m.so",
           "pkcs11:token=t;token=u;object=k?module-path=/m.so",
           "pkcs11:token=t%2;object=k?module-path=/m.so",
           "pkcs11:token=t;object?module-path=/m.so",
           "pkcs11:token=t;object=k?module-path=/m.so&pin-value=1&pin-source=/p",
           "pkcs11:token=t;object=k?module-name=softhsm2",
           "pkcs11:token=t;object=k?module-path=/m.so&pin-value=12 34",  // whitespace ends a PIN for without_pins
       }) {
    EXPECT_THROW(parse_pkcs11_uri(bad), UsageError) << bad;
  }
}

}  // namespace
}  // namespace albion::checkpoint
