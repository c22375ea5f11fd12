// File: tests/runtime/data/dataset_manifest_test.cpp
// dataset.json is read as untrusted input: a manifest round-trips, and each kind of damage (a
// field of the wrong type, a number out of range, totals that overflow or disagree, a shard name
// that points elsewhere, a reused file index) is an IntegrityError naming the field.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runtime/base/error.h"
#include "runtime/data/dataset_manifest.h"

namespace albion::data {
namespace {

using nlohmann::json;

const std::string kDigest(64, 'a');

DatasetManifest sample_manifest() {
  DatasetManifest m;
  m.tokenizer_spec = "gpt2:/models/gpt2";
  m.tokenizer_hash = std::string(64, 'b');
  m.tokenizer_description = "byte-level BPE, 50257 tokens";
  m.vocab_size = 50257;
  m.end_of_text = 50256;
  m.input_format = "jsonl";
  m.val_fraction = 0.1;
  m.seed = 1234;
  m.created_utc = "2026-12-03T16:00:00Z";
  m.sources = {{"/data/a.jsonl", kDigest, 1000}};
  m.splits["train"] = {30, 3, {{"train-00000.h5", 0, 20, 2, kDigest}, {"train-00001.h5", 1, 10, 1, kDigest}}};
  m.splits["val"] = {5, 1, {{"val-00000.h5", 2, 5, 1, kDigest}}};
  return m;
}

std::string integrity_error(const std::string& text) {
  try {
    parse_dataset_manifest(text, "ds/dataset.json");
  } catch (const IntegrityError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(DatasetManifest, RoundTrips) {
  const std::string text = manifest_to_json(sample_manifest());
  const DatasetManifest read = parse_dataset_manifest(text, "ds/dataset.json");
  EXPECT_EQ(manifest_to_json(read), text);
  EXPECT_EQ(read.end_of_text, 50256u);
  EXPECT_EQ(read.splits.at("train").shards.at(1).file_index, 1u);
  EXPECT_EQ(text.find("chat_template"), std::string::npos);  // only chat datasets have one

  DatasetManifest chat = sample_manifest();
  chat.input_format = "chat";
  chat.chat_template = "llama3";
  EXPECT_EQ(parse_dataset_manifest(manifest_to_json(chat), "ds/dataset.json").chat_template, "llama3");
}

TEST(DatasetManifest, DamageIsNamed) {
  const json good = json::parse(manifest_to_json(sample_manifest()));
  const struct {
    const char* pointer;
    json value;
    const char* want;
  } cases[] = {
      {"/tokenizer/vocab_size", "50257", "tokenizer: field 'vocab_size': expected a non-negative integer"},
      {"/tokenizer/vocab_size", 1e30, "tokenizer: field 'vocab_size': expected a non-negative integer"},
      {"/tokenizer/vocab_size", -1, "tokenizer: field 'vocab_size': expected a non-negative integer"},
      {"/tokenizer/vocab_size", 70000, "field 'token_dtype': uint16 does not match vocab size 70000"},
      {"/tokenizer/end_of_text", 50257, "field 'end_of_text': is not below vocab_size"},
      {"/tokenizer/spec", nullptr, "field 'spec': expected a string"},
      {"/format_version", 2, "not an albion token dataset of format version 1"},
      {"/has_loss_mask", "yes", "field 'has_loss_mask': expected true or false"},
      {"/val_fraction", 1.5, "field 'val_fraction': outside [0, 1)"},
      {"/seed", 0.5, "field 'seed': expected a non-negative integer"},
      {"/sources/0/bytes", -3, "source: field 'bytes': expected a non-negative integer"},
      {"/splits", json::array(), "field 'splits': expected an object"},
      {"/splits/train/shards/0/file", "../../etc/passwd", "is not a plain file name"},
      {"/splits/train/shards/0/file_index", 4294967296ull, "field 'file_index': out of range"},
      {"/splits/train/shards/0/file_index", 1, "shard file indices are not unique"},
      {"/splits/train/shards/0/sha256", "zz", "field 'sha256': expected 64 hex characters"},
      {"/splits/train/shards/0/tokens", 21, "split 'train': totals disagree with its shards"},
      {"/splits/train/shards/0/tokens", 18446744073709551615ull, "split 'train': field 'tokens': totals overflow"},
      {"/splits/val/shards/0/documents", "1", "field 'documents': expected a non-negative integer"},
  };
  for (const auto& c : cases) {
    json damaged = good;
    damaged[json::json_pointer(c.pointer)] = c.value;
    const std::string message = integrity_error(damaged.dump());
    EXPECT_NE(message.find(c.want), std::string::npos) << c.pointer << " = " << c.value.dump() << ": " << message;
    EXPECT_EQ(message.rfind("ds/dataset.json", 0), 0u) << message;
  }
  EXPECT_NE(integrity_error("{\"format\": ").find("ds/dataset.json: not valid JSON"), std::string::npos);
  EXPECT_NE(integrity_error("[1]").find("ds/dataset.json: expected an object"), std::string::npos);
  EXPECT_NE(integrity_error("{\"encrypted\": false, \"n\": 7e1111}").find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace albion::data
