// File: tests/runtime/data/token_shard_test.cpp
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <vector>

#include "runtime/base/error.h"
#include "runtime/data/token_shard.h"
#include "tests/support/temp_dir.h"

namespace albion::data {
namespace {

using testing_support::TempDir;

struct ShardData {
  std::vector<std::uint32_t> tokens;
  std::vector<std::uint64_t> offsets;
  std::vector<std::uint8_t> mask;
};

ShardData example(std::uint32_t vocab, std::size_t n, bool with_mask) {
  ShardData d;
  for (std::size_t i = 0; i < n; ++i) d.tokens.push_back(static_cast<std::uint32_t>((i * 7919) % vocab));
  d.offsets = {0, n / 3, n};
  if (with_mask) {
    for (std::size_t i = 0; i < n; ++i) d.mask.push_back(i % 3 == 0);
  }
  return d;
}

TEST(TokenShard, RoundTripsBothWidthsWithAndWithoutMask) {
  for (auto [vocab, with_mask] : {std::pair<std::uint32_t, bool>{50257, false}, {50257, true},
                                  {128256, false}, {128256, true}}) {
    TempDir dir;
    ShardData d = example(vocab, 1001, with_mask);
    const TokenWidth width = token_width_for_vocab(vocab);
    write_token_shard(dir / "s.h5", width, d.tokens, d.offsets, d.mask,
                      {"train", "hash", vocab, "[]"});
    TokenShard shard(dir / "s.h5", width, vocab, d.tokens.size());
    EXPECT_EQ(shard.token_count(), d.tokens.size());
    EXPECT_EQ(shard.doc_offsets(), d.offsets);
    EXPECT_EQ(shard.has_loss_mask(), with_mask);
    EXPECT_EQ(shard.attributes().split, "train");
    std::vector<std::int64_t> read(d.tokens.size());
    shard.copy_tokens(0, read.size(), read.data());
    EXPECT_TRUE(std::equal(read.begin(), read.end(), d.tokens.begin()));
    if (with_mask) {
      std::vector<std::uint8_t> mask(d.tokens.size());
      shard.copy_loss_mask(0, mask.size(), mask.data());
      EXPECT_EQ(mask, d.mask);
    }
  }
}

TEST(TokenShard, WidthFollowsVocabulary) {
  EXPECT_EQ(token_width_for_vocab(256), TokenWidth::kUint16);
  EXPECT_EQ(token_width_for_vocab(65536), TokenWidth::kUint16);
  EXPECT_EQ(token_width_for_vocab(65537), TokenWidth::kUint32);
}

TEST(TokenShard, RejectsInconsistentFiles) {
  TempDir dir;
  ShardData d = example(1000, 500, false);
  write_token_shard(dir / "s.h5", TokenWidth::kUint16, d.tokens, d.offsets, {}, {"train", "h", 1000, "[]"});
  // Expectations that disagree with the file.
  EXPECT_THROW(TokenShard(dir / "s.h5", TokenWidth::kUint32, 1000, 500), IntegrityError);
  EXPECT_THROW(TokenShard(dir / "s.h5", TokenWidth::kUint16, 999, 500), IntegrityError);
  EXPECT_THROW(TokenShard(dir / "s.h5", TokenWidth::kUint16, 1000, 499), IntegrityError);
  // Not HDF5 at all; truncated.
  EXPECT_THROW(TokenShard(dir.write("junk.h5", "not a shard"), TokenWidth::kUint16, 1000, 500),
               IntegrityError);
  std::filesystem::copy_file(dir / "s.h5", dir / "t.h5");
  std::filesystem::resize_file(dir / "t.h5", std::filesystem::file_size(dir / "t.h5") - 200);
  EXPECT_THROW(TokenShard(dir / "t.h5", TokenWidth::kUint16, 1000, 500), IntegrityError);
}

TEST(TokenShard, RejectsTokensOutsideTheVocabulary) {
  TempDir dir;
  ShardData d = example(1000, 100, false);
  d.tokens[50] = 1000;  // one past the end
  write_token_shard(dir / "s.h5", TokenWidth::kUint16, d.tokens, d.offsets, {}, {"train", "h", 1000, "[]"});
  EXPECT_THROW(TokenShard(dir / "s.h5", TokenWidth::kUint16, 1000, 100), IntegrityError);
}

}  // namespace
}  // namespace albion::data
