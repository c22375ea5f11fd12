// File: tests/runtime/data/document_packing_test.cpp
// Whole-document packing: no sequence over its capacity, every target of every document trained
// exactly once, whole documents kept whole, sequences in stream order, and best-fit decreasing
// filling sequences tighter than laying documents out in stream order would.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "runtime/data/document_packing.h"

namespace albion::data {
namespace {

std::vector<std::uint64_t> starts_of(const std::vector<std::uint64_t>& lengths) {
  std::vector<std::uint64_t> starts = {0};
  for (const std::uint64_t length : lengths) starts.push_back(starts.back() + length);
  return starts;
}

TEST(DocumentPacking, EveryTargetOnceAndShortDocumentsWhole) {
  std::mt19937_64 random(7);
  std::uniform_int_distribution<std::uint64_t> length(1, 90);  // with capacity 33: some cut, some of one token
  std::vector<std::uint64_t> lengths(2000);
  for (std::uint64_t& l : lengths) l = length(random);
  const std::vector<std::uint64_t> starts = starts_of(lengths);
  const std::uint64_t capacity = 33;
  const DocumentPacking packing = pack_documents(starts, capacity);

  // Each stream position t < end: how many sequences train the target t + 1 from input t.
  std::vector<int> trained(starts.back(), 0);
  std::map<std::uint64_t, int> whole;  // start of a document that fits: times it appears whole
  std::uint64_t padding = 0;
  for (std::uint64_t i = 0; i < packing.size(); ++i) {
    if (i > 0) {
      EXPECT_LT(packing.segments[packing.first[i - 1]].start, packing.segments[packing.first[i]].start) << i;
    }
    std::uint64_t used = 0;
    for (std::uint64_t s = packing.first[i]; s < packing.first[i + 1]; ++s) {
      const PackedSegment& segment = packing.segments[s];
      ASSERT_GE(segment.length, 2u);
      if (s > packing.first[i]) {
        EXPECT_LT(packing.segments[s - 1].start, segment.start) << "sequence " << i;
      }
      used += segment.length;
      for (std::uint64_t t = segment.start; t + 1 < segment.start + segment.length; ++t) ++trained[t];
      ++whole[segment.start];
    }
    ASSERT_LE(used, capacity) << "sequence " << i;
    padding += capacity - used;
  }
  EXPECT_EQ(packing.padding, padding);
  std::uint64_t documents = 0, cut = 0;
  for (std::size_t d = 0; d < lengths.size(); ++d) {
    if (lengths[d] < 2) continue;
    ++documents;
    cut += lengths[d] > capacity;
    for (std::uint64_t t = starts[d]; t + 1 < starts[d + 1]; ++t) ASSERT_EQ(trained[t], 1) << "document " << d;
    if (lengths[d] <= capacity) {
      EXPECT_EQ(whole[starts[d]], 1) << "document " << d;
    }
  }
  EXPECT_EQ(packing.documents, documents);
  EXPECT_EQ(packing.documents_cut, cut);
  EXPECT_GT(cut, 0u);
  // No target crosses from one document into the next, so none is counted twice above or missed.
  for (std::size_t d = 0; d + 1 < lengths.size(); ++d) EXPECT_EQ(trained[starts[d + 1] - 1], 0);
  // Best fit leaves little room: under 3% padding here.
  EXPECT_LT(static_cast<double>(padding) / static_cast<double>(packing.size() * capacity), 0.03);
}

// A document longer than a sequence: pieces of `capacity` tokens overlapping by one (the last target
// of a piece is the first input of the next), the rest packed with the others.
TEST(DocumentPacking, LongDocumentsAreCutIntoOverlappingPieces) {
  const DocumentPacking packing = pack_documents(starts_of({12, 3}), 5);
  ASSERT_EQ(packing.size(), 4u);
  EXPECT_EQ(packing.segments, (std::vector<PackedSegment>{{0, 5}, {4, 5}, {8, 4}, {12, 3}}));
  // 4 tokens left by the long one, 3 by the short one: separate sequences; 1 + 2 tokens of padding.
  EXPECT_EQ(packing.first, (std::vector<std::uint64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(packing.documents_cut, 1u);
  EXPECT_EQ(packing.padding, 1u + 2u);
}

// Stream order would need three sequences for 7, 5, 3, 5 in tens (7 | 5 3 | 5); best fit needs two.
TEST(DocumentPacking, BestFitDecreasingFillsSequencesExactly) {
  const DocumentPacking packing = pack_documents(starts_of({7, 5, 3, 5}), 10);
  ASSERT_EQ(packing.size(), 2u);
  EXPECT_EQ(packing.padding, 0u);
  EXPECT_EQ(packing.segments, (std::vector<PackedSegment>{{0, 7}, {12, 3}, {7, 5}, {15, 5}}));
  // The stream's windows [0, 10), [9, 19), [18, 28) cut the second document and the fourth.
  EXPECT_EQ(documents_cut_by_windows(starts_of({7, 5, 3, 5}), 10), 2u);
  EXPECT_EQ(documents_cut_by_windows(starts_of({9, 9, 12}), 10), 0u);  // whole, whole, too long to count
}

TEST(DocumentPacking, NothingToPackGivesNoSequences) {
  EXPECT_EQ(pack_documents({0}, 8).size(), 0u);
  EXPECT_EQ(pack_documents(starts_of({1, 1}), 8).size(), 0u);
}

}  // namespace
}  // namespace albion::data
