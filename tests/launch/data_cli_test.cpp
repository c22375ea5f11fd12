// File: tests/launch/data_cli_test.cpp
// `albion data prepare` and `albion data inspect` as a user runs them.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/run_albion.h"
#include "tests/support/temp_dir.h"

namespace {

using albion::testing_support::count_lines;
using albion::testing_support::read_bytes;
using albion::testing_support::run_albion;
using albion::testing_support::TempDir;

const std::string kCorpus = std::string(ALBION_SOURCE_DIR) + "/recipes/corpus/austen/persuasion.txt";

TEST(DataCli, PrepareThenInspectShowsCountsAndADecodedSample) {
  TempDir dir;
  auto prepared = run_albion("data prepare --input " + kCorpus + " --output " + (dir / "ds") +
                             " --tokenizer byte --text-document-bytes 20000 --val-fraction 0.1");
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  EXPECT_NE(prepared.output.find("prepared "), std::string::npos) << prepared.output;

  auto inspected = run_albion("data inspect " + (dir / "ds"));
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  for (const char* field : {"tokenizer", "vocab        257", "encrypted    no", "train", "val", "sample"}) {
    EXPECT_NE(inspected.output.find(field), std::string::npos) << field << "\n" << inspected.output;
  }
  // The corpus opens with the title: the decoded sample shows it.
  EXPECT_NE(inspected.output.find("Persuasion"), std::string::npos) << inspected.output;
}

TEST(DataCli, BadInputsAreOneLineUsageErrors) {
  TempDir dir;
  dir.write("ds/placeholder", "");
  auto exists = run_albion("data prepare --input " + kCorpus + " --output " + (dir / "ds") + " --tokenizer byte");
  EXPECT_EQ(exists.exit_code, 2);
  EXPECT_NE(exists.output.find("already exists (pass --overwrite"), std::string::npos) << exists.output;
  EXPECT_EQ(count_lines(exists.output), 1) << exists.output;

  std::string bad = dir.write("bad.jsonl", "{\"text\": \"a\"}\nnot json\n");
  auto malformed = run_albion("data prepare --format jsonl --input " + bad + " --output " +
                              (dir / "out") + " --tokenizer byte");
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_EQ(malformed.output.rfind("albion: error: " + bad + ":2: malformed JSON", 0), 0u) << malformed.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));

  EXPECT_EQ(run_albion("data").exit_code, 2);
  EXPECT_EQ(run_albion("data frobnicate").exit_code, 2);
  EXPECT_EQ(run_albion("data prepare --input x").exit_code, 2);  // --output, --tokenizer missing
  EXPECT_EQ(run_albion("data inspect " + (dir / "nowhere")).exit_code, 2);
}

// An encrypted dataset needs a policy and goes only under a declared UK root, refused before
// writing; the write and the refusal are both audited, beside the dataset.
TEST(DataCli, EncryptedDatasetsObeyTheResidencyPolicyAndAreAudited) {
  TempDir dir;
  dir.write("uk/.keep", "");
  dir.write("us/.keep", "");
  const std::string policy = dir.write("policy.json", R"({"format": "albion-residency-policy/1", "roots": [
    {"path": "uk", "jurisdiction": "UK"}, {"path": "us", "jurisdiction": "US"}]})");
  ASSERT_EQ(run_albion("keys generate --out " + (dir / "kek")).exit_code, 0);
  const std::string encrypted = " --input " + kCorpus + " --tokenizer byte --encrypt file:" + (dir / "kek");

  auto no_policy = run_albion("data prepare --output " + (dir / "uk/ds") + encrypted);
  EXPECT_EQ(no_policy.exit_code, 2) << no_policy.output;
  EXPECT_NE(no_policy.output.find("--encrypt needs --policy"), std::string::npos) << no_policy.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "uk/ds"));

  auto refused = run_albion("data prepare --output " + (dir / "us/ds") + encrypted + " --policy " + policy);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("jurisdiction US"), std::string::npos) << refused.output;
  EXPECT_EQ(count_lines(refused.output), 1) << refused.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "us/ds"));
  EXPECT_FALSE(std::filesystem::exists(dir / "us/ds.partial"));
  const std::string refusal = read_bytes(dir / "us/audit.jsonl");
  EXPECT_NE(refusal.find("\"action\":\"refusal\""), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("\"outcome\":\"refused\""), std::string::npos) << refusal;

  auto allowed = run_albion("data prepare --output " + (dir / "uk/ds") + encrypted + " --policy " + policy);
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  const std::string record = read_bytes(dir / "uk/audit.jsonl");
  EXPECT_EQ(count_lines(record), 1) << record;
  EXPECT_NE(record.find("\"action\":\"save\""), std::string::npos) << record;
  EXPECT_NE(record.find("\"outcome\":\"ok\""), std::string::npos) << record;
  EXPECT_NE(record.find("encrypted dataset"), std::string::npos) << record;
  EXPECT_EQ(record.find("\"key_id\":\"\""), std::string::npos) << record;  // the KEK's fingerprint
  EXPECT_EQ(run_albion("ckpt audit " + (dir / "uk/audit.jsonl")).exit_code, 0);
}

TEST(DataCli, TamperedShardIsAnIntegrityFailure) {
  TempDir dir;
  ASSERT_EQ(run_albion("data prepare --input " + kCorpus + " --output " + (dir / "ds") + " --tokenizer byte").exit_code, 0);
  dir.write("ds/train-00000.h5", "replaced");
  auto inspected = run_albion("data inspect " + (dir / "ds"));
  EXPECT_EQ(inspected.exit_code, 3) << inspected.output;
  EXPECT_NE(inspected.output.find("train-00000.h5: SHA-256 does not match"), std::string::npos) << inspected.output;
}

}  // namespace
