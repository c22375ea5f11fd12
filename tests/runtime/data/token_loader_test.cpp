// File: tests/runtime/data/token_loader_test.cpp
// The loader over a byte-tokenized dataset whose token values encode their stream position, so
// every window can be checked for content as well as for overlap between ranks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "runtime/base/error.h"
#include "runtime/data/file_digest.h"
#include "runtime/data/prepare.h"
#include "runtime/data/token_loader.h"
#include "tests/support/cuda_available.h"
#include "tests/support/temp_dir.h"

namespace albion::data {
namespace {

namespace fs = std::filesystem;
using testing_support::TempDir;

class TokenLoaderTest : public testing::Test {
 protected:
  void SetUp() override {
    // Several documents and shards, so windows cross both.
    std::string text;
    for (int i = 0; i < 3000; ++i) text += "line " + std::to_string(i) + " of text\n\n";
    PrepareOptions o;
    o.inputs = {dir_.write("corpus.txt", text)};
    o.output = dir_ / "ds";
    o.tokenizer_spec = "byte";
    o.text_document_bytes = 2000;
    o.shard_tokens = 10000;
    o.val_fraction = 0.1;
    prepare_dataset(o);
  }

  LoaderOptions options(int rank, int world, bool pack_documents = false) const {
    LoaderOptions o;
    o.pack_documents = pack_documents;
    o.directory = dir_ / "ds";
    o.seq_len = 32;
    o.batch_size = 4;
    o.rank = rank;
    o.world_size = world;
    o.seed = 99;
    return o;
  }

  TempDir dir_;
};

// A window is identified by its input row; rows are distinct across windows with high probability
// for this text, and content is checked against the target shift.
std::string row_key(const at::Tensor& row) {
  std::string key;
  for (std::int64_t i = 0; i < row.size(0); ++i) key += static_cast<char>(row[i].item<std::int64_t>());
  return key;
}

TEST_F(TokenLoaderTest, TargetsAreInputsShiftedByOne) {
  TokenLoader loader(options(0, 1));
  TokenBatch batch = loader.next();
  ASSERT_EQ(batch.inputs.sizes(), (std::vector<std::int64_t>{4, 32}));
  EXPECT_TRUE(batch.inputs.narrow(1, 1, 31).equal(batch.targets.narrow(1, 0, 31)));
  EXPECT_FALSE(batch.loss_mask.defined());
  EXPECT_EQ(batch.text_inputs(), 4 * 32);  // the stream has no padding
  EXPECT_LT(batch.inputs.max().item<std::int64_t>(), 257);
}

// data.document_masking: each input's position counts from 0 after every end-of-text (where
// prepare ends each document), from the window's start before the first; a batch with no document
// starting inside a row leaves them undefined (0 .. seq_len - 1).
TEST_F(TokenLoaderTest, DocumentPositionsRestartAfterEachEndOfText) {
  LoaderOptions o = options(0, 1);
  o.document_positions = true;
  TokenLoader loader(o);
  ASSERT_TRUE(loader.manifest().end_of_text.has_value());
  const std::int64_t end_of_text = *loader.manifest().end_of_text;
  int with_starts = 0, without = 0;
  for (int step = 0; step < 300; ++step) {
    const TokenBatch batch = loader.next();
    if (!batch.positions.defined()) {
      ++without;
      EXPECT_EQ((batch.inputs.narrow(1, 0, 31) == end_of_text).sum().item<std::int64_t>(), 0) << "step " << step;
      continue;
    }
    ++with_starts;
    ASSERT_EQ(batch.positions.sizes(), batch.inputs.sizes());
    for (std::int64_t row = 0; row < 4; ++row) {
      const auto* ids = batch.inputs[row].data_ptr<std::int64_t>();
      const auto* positions = batch.positions[row].data_ptr<std::int64_t>();
      EXPECT_EQ(positions[0], 0);
      for (std::int64_t i = 1; i < 32; ++i) {
        EXPECT_EQ(positions[i], ids[i - 1] == end_of_text ? 0 : positions[i - 1] + 1) << "step " << step;
      }
    }
  }
  EXPECT_GT(with_starts, 0);
  EXPECT_GT(without, 0);
  EXPECT_FALSE(TokenLoader(options(0, 1)).next().positions.defined());
}

// data.packing = documents over documents of 9 to 88 bytes and an end-of-text, in sequences of 49
// tokens: over an epoch each document that fits is seen exactly once and whole, the loss mask
// leaves out the targets after each end-of-text (the next document's first token, or padding),
// positions restart at each document, and a restored loader continues exactly.
TEST(PackedDocuments, EachDocumentWholeOnceWithItsOwnTargetsAndPositions) {
  TempDir dir;
  std::string records;
  std::set<std::string> short_documents;
  for (int i = 0; i < 400; ++i) {
    const std::string text = "doc " + std::to_string(i) + ":" + std::string(static_cast<std::size_t>(i * 37 % 80), 'x');
    records += R"({"text": ")" + text + "\"}\n";
    if (text.size() + 1 <= 49) short_documents.insert(text);
  }
  PrepareOptions prepare;
  prepare.inputs = {dir.write("docs.jsonl", records)};
  prepare.format = InputFormat::kJsonl;
  prepare.output = dir / "ds";
  prepare.tokenizer_spec = "byte";
  prepare.shard_tokens = 5000;  // several shards
  prepare_dataset(prepare);

  LoaderOptions o;
  o.directory = dir / "ds";
  o.seq_len = 48;
  o.batch_size = 1;
  o.shuffle = false;
  o.pack_documents = true;
  o.document_positions = true;
  TokenLoader loader(o);
  ASSERT_TRUE(loader.packing().has_value());
  EXPECT_EQ(loader.packing()->documents, 400u);
  EXPECT_GT(loader.packing()->documents_cut, 0u);
  const std::int64_t end_of_text = *loader.manifest().end_of_text;
  std::multiset<std::string> seen;
  std::int64_t padded_sequences = 0;
  for (std::uint64_t step = 0; step < loader.steps_per_epoch(); ++step) {
    const TokenBatch batch = loader.next();
    ASSERT_TRUE(batch.loss_mask.defined());
    const auto* in = batch.inputs.data_ptr<std::int64_t>();
    const auto* mask = batch.loss_mask.data_ptr<std::uint8_t>();
    // Every document ends with one end-of-text; the end-of-texts after it are padding.
    std::int64_t padding = 0;
    for (std::int64_t i = 1; i < 48; ++i) padding += in[i] == end_of_text && in[i - 1] == end_of_text;
    EXPECT_EQ(batch.text_inputs(), 48 - padding) << "sequence " << step;
    padded_sequences += padding > 0;
    std::string text;
    for (std::int64_t i = 0; i <= 48; ++i) {
      const std::int64_t token = i < 48 ? in[i] : batch.targets[0][47].item<std::int64_t>();
      if (token != end_of_text) {
        text += static_cast<char>(token);
      } else {
        if (text.starts_with("doc ")) seen.insert(text);
        text.clear();
      }
      if (i < 48) {
        EXPECT_EQ(mask[i], in[i] != end_of_text ? 1 : 0) << "sequence " << step << ", target " << i;
      }
    }
    if (!batch.positions.defined()) continue;  // one document (or piece) alone: 0 .. 47
    const auto* positions = batch.positions.data_ptr<std::int64_t>();
    EXPECT_EQ(positions[0], 0);
    for (std::int64_t i = 1; i < 48; ++i) {
      const bool starts = in[i - 1] == end_of_text && in[i] != end_of_text;
      EXPECT_EQ(positions[i], starts ? 0 : positions[i - 1] + 1) << "sequence " << step << ", input " << i;
    }
  }
  EXPECT_EQ(seen, std::multiset<std::string>(short_documents.begin(), short_documents.end()));
  EXPECT_GT(padded_sequences, 0);

  o.shuffle = true;
  o.batch_size = 4;
  TokenLoader first(o);
  for (int i = 0; i < 3; ++i) first.next();
  TokenLoader resumed(o);
  resumed.restore(first.state());
  const TokenBatch expected = first.next();
  const TokenBatch batch = resumed.next();
  EXPECT_TRUE(batch.inputs.equal(expected.inputs));
  EXPECT_TRUE(batch.loss_mask.equal(expected.loss_mask));
}

// Also for packed documents (data.packing = documents), which every rank packs alike.
TEST_F(TokenLoaderTest, TwoRanksNeverShareAWindowAndTogetherCoverTheEpoch) {
  for (const bool packed : {false, true}) {
    SCOPED_TRACE(packed ? "packed documents" : "stream windows");
    TokenLoader rank0(options(0, 2, packed));
    TokenLoader rank1(options(1, 2, packed));
    TokenLoader single(options(0, 1, packed));
    ASSERT_EQ(rank0.steps_per_epoch(), rank1.steps_per_epoch());
    std::multiset<std::string> two_ranks;
    const std::uint64_t steps = rank0.steps_per_epoch();
    for (std::uint64_t step = 0; step < steps; ++step) {
      for (TokenLoader* loader : {&rank0, &rank1}) {
        at::Tensor inputs = loader->next().inputs;
        for (std::int64_t r = 0; r < inputs.size(0); ++r) two_ranks.insert(row_key(inputs[r]));
      }
    }
    std::multiset<std::string> one_rank;
    for (std::uint64_t step = 0; step < 2 * steps; ++step) {
      at::Tensor inputs = single.next().inputs;
      for (std::int64_t r = 0; r < inputs.size(0); ++r) one_rank.insert(row_key(inputs[r]));
    }
    // Same sequences as one rank taking the same global batch: no overlap, nothing missed.
    EXPECT_EQ(two_ranks, one_rank);
    EXPECT_EQ(std::set<std::string>(two_ranks.begin(), two_ranks.end()).size(), two_ranks.size());
  }
}

TEST_F(TokenLoaderTest, ResumesExactlyAcrossEpochsAndWorldSizes) {
  TokenLoader uninterrupted(options(0, 1));
  const std::uint64_t steps = uninterrupted.steps_per_epoch() + 3;  // crosses an epoch boundary
  std::vector<TokenBatch> expected;
  for (std::uint64_t i = 0; i < steps; ++i) expected.push_back(uninterrupted.next());
  EXPECT_EQ(expected.back().state.epoch, 1u);

  TokenLoader first(options(0, 1));
  for (int i = 0; i < 5; ++i) first.next();
  LoaderState saved = first.state();
  TokenLoader resumed(options(0, 1));
  resumed.restore(saved);
  for (std::uint64_t i = 5; i < steps; ++i) {
    TokenBatch batch = resumed.next();
    ASSERT_TRUE(batch.inputs.equal(expected[i].inputs)) << "step " << i;
    ASSERT_EQ(batch.state, expected[i].state);
  }

  // A state saved by a 1-rank run continues on 2 ranks: their union is the single run's batch
  // of twice the size.
  LoaderOptions wide = options(0, 1);
  wide.batch_size = 8;
  TokenLoader single_wide(wide);
  single_wide.restore(saved);
  TokenBatch whole = single_wide.next();
  TokenLoader r0(options(0, 2));
  TokenLoader r1(options(1, 2));
  r0.restore(saved);
  r1.restore(saved);
  std::multiset<std::string> parts;
  std::multiset<std::string> all;
  for (TokenLoader* loader : {&r0, &r1}) {
    at::Tensor inputs = loader->next().inputs;
    for (std::int64_t r = 0; r < 4; ++r) parts.insert(row_key(inputs[r]));
  }
  for (std::int64_t r = 0; r < 8; ++r) all.insert(row_key(whole.inputs[r]));
  EXPECT_EQ(parts, all);
}

TEST_F(TokenLoaderTest, SameSeedSameBatchesOtherSeedOtherOrder) {
  TokenLoader a(options(0, 1));
  TokenLoader b(options(0, 1));
  LoaderOptions other = options(0, 1);
  other.seed = 100;
  TokenLoader c(other);
  at::Tensor from_a = a.next().inputs;
  EXPECT_TRUE(from_a.equal(b.next().inputs));
  EXPECT_FALSE(from_a.equal(c.next().inputs));
}

TEST_F(TokenLoaderTest, ModifiedShardIsAnIntegrityError) {
  const std::string shard = dir_ / "ds/train-00000.h5";
  {
    std::fstream file(shard, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(fs::file_size(shard) / 2));
    file.put('\x7f');
  }
  try {
    TokenLoader loader(options(0, 1));
    FAIL() << "a modified shard was accepted";
  } catch (const IntegrityError& e) {
    EXPECT_NE(std::string(e.what()).find("train-00000.h5"), std::string::npos) << e.what();
  }
}

TEST_F(TokenLoaderTest, MissingShardOrSplitOrTooSmallAreErrors) {
  LoaderOptions o = options(0, 1);
  o.split = "test";
  EXPECT_THROW(TokenLoader{o}, UsageError);
  o = options(0, 1);
  o.seq_len = 1 << 20;
  EXPECT_THROW(TokenLoader{o}, UsageError);
  fs::remove(dir_ / "ds/train-00001.h5");
  EXPECT_THROW(TokenLoader(options(0, 1)), IntegrityError);
}

}  // namespace
}  // namespace albion::data

namespace albion::data {
namespace {

class TokenLoaderCuda : public TokenLoaderTest {};

TEST_F(TokenLoaderCuda, PinnedNonBlockingCopiesMatchTheCpuBatches) {
  ALBION_SKIP_WITHOUT_CUDA();
  TokenLoader cpu(options(0, 1));
  LoaderOptions on_gpu = options(0, 1);
  on_gpu.device = at::Device(at::kCUDA, 0);
  TokenLoader gpu(on_gpu);
  for (int step = 0; step < 5; ++step) {
    TokenBatch expected = cpu.next();
    TokenBatch actual = gpu.next();
    ASSERT_TRUE(actual.inputs.is_cuda());
    EXPECT_TRUE(actual.inputs.cpu().equal(expected.inputs)) << "step " << step;
    EXPECT_TRUE(actual.targets.cpu().equal(expected.targets)) << "step " << step;
  }
}

}  // namespace
}  // namespace albion::data
