// File: tests/runtime/data/encrypted_dataset_test.cpp
// Encrypted token datasets: nothing readable on disk, the loader yields exactly the plaintext
// dataset's batches with the key, and a missing key, the wrong key, any edit or plaintext where a
// key is given is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint/keys/key_file.h"
#include "runtime/base/error.h"
#include "runtime/data/dataset_manifest.h"
#include "runtime/data/prepare.h"
#include "runtime/data/token_loader.h"
#include "tests/support/temp_dir.h"

namespace albion::data {
namespace {

namespace fs = std::filesystem;
using testing_support::read_bytes;
using testing_support::TempDir;

class EncryptedDatasetTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string text;
    for (int i = 0; i < 1500; ++i) text += "Confidential record " + std::to_string(i) + " of Mr Darcy.\n\n";
    corpus_ = dir_.write("private/notes.txt", text);
    checkpoint::generate_key_file(dir_ / "kek", checkpoint::KeyFileOverwrite::kRefuse);
    checkpoint::generate_key_file(dir_ / "other", checkpoint::KeyFileOverwrite::kRefuse);
    key_ = "file:" + (dir_ / "kek");
    for (bool encrypted : {false, true}) {
      PrepareOptions o;
      o.inputs = {corpus_};
      o.output = dir_ / (encrypted ? "sealed" : "plain");
      o.tokenizer_spec = "byte";
      o.text_document_bytes = 3000;
      o.val_fraction = 0.1;
      o.shard_tokens = 20000;
      if (encrypted) o.encrypt_key_spec = key_;
      prepare_dataset(o);
    }
  }

  LoaderOptions loader(const std::string& name, const std::string& key) const {
    LoaderOptions o;
    o.directory = dir_ / name;
    o.seq_len = 64;
    o.batch_size = 4;
    o.seed = 5;
    o.key_spec = key;
    return o;
  }

  TempDir dir_;
  std::string corpus_;
  std::string key_;
};

TEST_F(EncryptedDatasetTest, NothingReadableOnDisk) {
  // The byte tokenizer stores "Darcy" as uint16 little-endian: D\0a\0r\0c\0y\0.
  const std::string darcy_tokens("D\0a\0r\0c\0y\0", 10);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir_ / "sealed")) {
    const std::string bytes = read_bytes(entry.path().string());
    EXPECT_EQ(bytes.find(darcy_tokens), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find("Darcy"), std::string::npos) << entry.path();
    EXPECT_EQ(bytes.find("private/notes.txt"), std::string::npos) << entry.path() << " names a source";
    ++files;
  }
  EXPECT_GE(files, 3);
  // The plaintext dataset does contain them: the check above can fail.
  EXPECT_NE(read_bytes(dir_ / "plain/train-00000.h5").find(darcy_tokens), std::string::npos);
}

TEST_F(EncryptedDatasetTest, LoaderYieldsThePlaintextBatchesWithTheKey) {
  TokenLoader plain(loader("plain", ""));
  TokenLoader sealed(loader("sealed", key_));
  ASSERT_EQ(plain.sequences_per_epoch(), sealed.sequences_per_epoch());
  for (int step = 0; step < 30; ++step) {
    ASSERT_TRUE(plain.next().inputs.equal(sealed.next().inputs)) << "step " << step;
  }
}

TEST_F(EncryptedDatasetTest, MissingOrWrongKeyIsRefused) {
  EXPECT_THROW(TokenLoader(loader("sealed", "")), UsageError);
  EXPECT_THROW(TokenLoader(loader("sealed", "file:" + (dir_ / "other"))), IntegrityError);
  EXPECT_TRUE(read_encryption_header(dir_ / "sealed").has_value());
  EXPECT_FALSE(read_encryption_header(dir_ / "plain").has_value());
}

// A key says the data is private: plaintext in its place (swapped in, or prepared without
// --encrypt) is refused, not trained on.
TEST_F(EncryptedDatasetTest, PlaintextWhereAKeyIsGivenIsRefused) {
  EXPECT_THROW(TokenLoader(loader("plain", key_)), IntegrityError);
  fs::remove_all(dir_ / "sealed");
  fs::rename(dir_ / "plain", dir_ / "sealed");
  EXPECT_THROW(TokenLoader(loader("sealed", key_)), IntegrityError);
  EXPECT_NO_THROW(TokenLoader(loader("sealed", "")));
}

TEST_F(EncryptedDatasetTest, AnyEditIsAnIntegrityError) {
  // An edited sealed manifest.
  std::string manifest = read_bytes(dir_ / "sealed/dataset.json");
  const std::size_t at = manifest.find("\"sealed_manifest\": \"") + 30;
  std::string edited = manifest;
  edited[at] = edited[at] == '0' ? '1' : '0';
  std::ofstream(dir_ / "sealed/dataset.json", std::ios::trunc) << edited;
  EXPECT_THROW(TokenLoader(loader("sealed", key_)), IntegrityError);
  std::ofstream(dir_ / "sealed/dataset.json", std::ios::trunc) << manifest;

  // A shard from the plaintext dataset in place of the sealed one.
  fs::copy_file(dir_ / "plain/train-00000.h5", dir_ / "sealed/train-00000.h5", fs::copy_options::overwrite_existing);
  EXPECT_THROW(TokenLoader(loader("sealed", key_)), IntegrityError);
}

}  // namespace
}  // namespace albion::data
