// File: runtime/data/document_packing.cpp
#include "runtime/data/document_packing.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "runtime/base/check.h"

namespace albion::data {

DocumentPacking pack_documents(const std::vector<std::uint64_t>& document_starts, std::uint64_t capacity) {
  ALBION_CHECK(capacity >= 2, "packing needs sequences of at least two tokens");
  ALBION_CHECK(std::is_sorted(document_starts.begin(), document_starts.end()), "document starts out of order");
  DocumentPacking packing;
  packing.capacity = capacity;
  // A long document's whole pieces each fill a sequence; the rest (whole documents, last pieces)
  // are packed below.
  std::vector<PackedSegment> full, rest;
  for (std::size_t d = 0; d + 1 < document_starts.size(); ++d) {
    std::uint64_t start = document_starts[d];
    const std::uint64_t end = document_starts[d + 1];
    if (end - start < 2) continue;
    ++packing.documents;
    if (end - start > capacity) ++packing.documents_cut;
    for (; end - start > capacity; start += capacity - 1) full.push_back({start, capacity});
    if (end - start >= 2) rest.push_back({start, end - start});
  }
  // Best-fit decreasing: longest first (ties in stream order, so the result is deterministic), each
  // into the sequence with the least room that still holds it, else into a new sequence.
  std::stable_sort(rest.begin(), rest.end(),
                   [](const PackedSegment& a, const PackedSegment& b) { return a.length > b.length; });
  std::vector<std::uint64_t> sequence_of(rest.size());
  std::vector<std::uint64_t> used;                              // tokens in each open sequence
  std::set<std::pair<std::uint64_t, std::uint64_t>> by_room;  // (room left, sequence)
  for (std::size_t s = 0; s < rest.size(); ++s) {
    const std::uint64_t length = rest[s].length;
    auto fit = by_room.lower_bound({length, 0});
    std::uint64_t sequence;
    if (fit == by_room.end()) {
      sequence = used.size();
      used.push_back(0);
    } else {
      sequence = fit->second;
      by_room.erase(fit);
    }
    used[sequence] += length;
    if (capacity - used[sequence] >= 2) by_room.insert({capacity - used[sequence], sequence});
    sequence_of[s] = sequence;
  }
  // Lay the sequences out in the order of their first tokens in the stream, each one's segments in
  // stream order: read unshuffled (validation), they follow the stream as windows do, instead of
  // visiting the longest documents first.
  struct Placed {
    std::uint64_t sequence;
    PackedSegment segment;
  };
  std::vector<Placed> placed;
  placed.reserve(full.size() + rest.size());
  for (std::size_t j = 0; j < full.size(); ++j) placed.push_back({j, full[j]});
  for (std::size_t s = 0; s < rest.size(); ++s) placed.push_back({full.size() + sequence_of[s], rest[s]});
  const std::uint64_t sequences = full.size() + used.size();
  std::vector<std::uint64_t> first_token(sequences, std::numeric_limits<std::uint64_t>::max());
  for (const Placed& p : placed) first_token[p.sequence] = std::min(first_token[p.sequence], p.segment.start);
  // Segments never share a start, so ordering by each sequence's first token then by start is total.
  std::sort(placed.begin(), placed.end(), [&](const Placed& a, const Placed& b) {
    return std::pair(first_token[a.sequence], a.segment.start) < std::pair(first_token[b.sequence], b.segment.start);
  });
  packing.segments.reserve(placed.size());
  for (std::size_t k = 0; k < placed.size(); ++k) {
    if (k == 0 || placed[k].sequence != placed[k - 1].sequence) packing.first.push_back(k);
    packing.segments.push_back(placed[k].segment);
  }
  packing.first.push_back(placed.size());
  for (const std::uint64_t tokens : used) packing.padding += capacity - tokens;
  return packing;
}

std::uint64_t documents_cut_by_windows(const std::vector<std::uint64_t>& document_starts, std::uint64_t capacity) {
  ALBION_CHECK(capacity >= 2, "windows need at least two tokens");
  const std::uint64_t stride = capacity - 1;
  std::uint64_t cut = 0;
  for (std::size_t d = 0; d + 1 < document_starts.size(); ++d) {
    const std::uint64_t start = document_starts[d], end = document_starts[d + 1];
    if (end - start < 2 || end - start > capacity) continue;
    // The last window starting at or before the document is the only one that can hold it whole.
    cut += end > start / stride * stride + capacity;
  }
  return cut;
}

}  // namespace albion::data
