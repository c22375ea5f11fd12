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

// A base model's prompt/completion data (--chat-template none): inspect marks what is trained on.
TEST(DataCli, InspectMarksTheTokensAChatDatasetTrainsOn) {
  TempDir dir;
  const std::string records = dir.write("qa.jsonl", "{\"prompt\": \"Q: 2+2?\\nA:\", \"completion\": \" 4\"}\n"
                                                    "{\"prompt\": \"Q: 3+3?\\nA:\", \"completion\": \" 6\"}\n");
  auto prepared = run_albion("data prepare --format chat --chat-template none --tokenizer byte --input " + records +
                             " --output " + (dir / "ds"));
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  auto inspected = run_albion("data inspect " + (dir / "ds"));
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_NE(inspected.output.find("format       chat (template none), with loss mask"), std::string::npos)
      << inspected.output;
  EXPECT_NE(inspected.output.find("the 6 trained on (loss mask 1) between [[ and ]]:\n"
                                  "Q: 2+2?\nA:[[ 4<|endoftext|>]]Q: 3+3?\nA:[[ 6<|endoftext|>]]\n"),
            std::string::npos)
      << inspected.output;

  // Two documents of 13 tokens in sequences of 16 (+1): the stream's first window cuts the second;
  // packed whole they need a sequence each, 4 tokens of padding in each 17.
  inspected = run_albion("data inspect " + (dir / "ds") + " --seq-len 16");
  ASSERT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_NE(inspected.output.find("  stream     1 windows, no padding; 1 of the 2 documents that fit one (50.0%) cut "
                                  "between two\n"
                                  "  documents  2 sequences, 23.5% padding; no document that fits cut, 0 longer ones"),
            std::string::npos)
      << inspected.output;
  EXPECT_EQ(run_albion("data inspect " + (dir / "ds") + " --seq-len -3").exit_code, 2);
}

// dataset.json is checked field by field: damage is one line naming the field, exit 3.
TEST(DataCli, ADamagedManifestNamesTheField) {
  TempDir dir;
  ASSERT_EQ(run_albion("data prepare --tokenizer byte --input " + kCorpus + " --output " + (dir / "ds")).exit_code, 0);
  std::string manifest = read_bytes(dir / "ds/dataset.json");
  const std::string field = "\"vocab_size\": 257";
  ASSERT_NE(manifest.find(field), std::string::npos) << manifest;
  manifest.replace(manifest.find(field), field.size(), "\"vocab_size\": 2.57e300");
  dir.write("ds/dataset.json", manifest);
  auto inspected = run_albion("data inspect " + (dir / "ds"));
  EXPECT_EQ(inspected.exit_code, 3) << inspected.output;
  EXPECT_EQ(inspected.output, "albion: error: " + (dir / "ds/dataset.json") +
                                  ": tokenizer: field 'vocab_size': expected a non-negative integer\n");
}

TEST(DataCli, BadInputsAreOneLineUsageErrors) {
  TempDir dir;
  dir.write("ds/placeholder", "");
  auto exists = run_albion("data prepare --input " + kCorpus + " --output " + (dir / "ds") + " --tokenizer byte");
  EXPECT_EQ(exists.exit_code, 2);
  EXPECT_NE(exists.output.find("already exists (pass --overwrite"), std::string::npos) << exists.output;
  EXPECT_EQ(count_lines(exists.output), 1) << exists.output;
  // "." would rename the working directory (it was an internal error, exit 1).
  auto dot = run_albion("data prepare --input " + kCorpus + " --output . --overwrite --tokenizer byte");
  EXPECT_EQ(dot.exit_code, 2) << dot.output;
  EXPECT_EQ(count_lines(dot.output), 1) << dot.output;

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
// writing (also where the refused directory does not exist yet); the write and the refusal are
// both audited in the log beside the policy.
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

  for (const std::string& refused_path : {dir / "us/ds", dir / "us/new/ds"}) {
    auto refused = run_albion("data prepare --output " + refused_path + encrypted + " --policy " + policy);
    EXPECT_EQ(refused.exit_code, 2) << refused.output;
    EXPECT_NE(refused.output.find("jurisdiction US"), std::string::npos) << refused.output;
    EXPECT_EQ(count_lines(refused.output), 1) << refused.output;
    EXPECT_FALSE(std::filesystem::exists(refused_path));
    EXPECT_FALSE(std::filesystem::exists(refused_path + ".partial"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "us/new"));  // nothing at all written there

  auto allowed = run_albion("data prepare --output " + (dir / "uk/ds") + encrypted + " --policy " + policy);
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  const std::string log = read_bytes(dir / "audit.jsonl");
  EXPECT_EQ(count_lines(log), 3) << log;
  const std::string save = log.substr(log.rfind("{\"prev\""));
  EXPECT_NE(log.find("\"action\":\"refusal\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"outcome\":\"refused\""), std::string::npos) << log;
  EXPECT_NE(save.find("\"action\":\"save\""), std::string::npos) << save;
  EXPECT_NE(save.find("\"outcome\":\"ok\""), std::string::npos) << save;
  EXPECT_NE(save.find("encrypted dataset"), std::string::npos) << save;
  EXPECT_EQ(save.find("\"key_id\":\"\""), std::string::npos) << save;  // the KEK's fingerprint
  EXPECT_EQ(run_albion("ckpt audit " + (dir / "audit.jsonl")).exit_code, 0);
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
