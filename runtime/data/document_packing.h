// File: runtime/data/document_packing.h
// Packs whole documents into training sequences (data.packing = documents), so that no document
// that fits in a sequence is ever cut between two of them.
//
// The stream loader cuts the token stream at fixed offsets: a conversation that straddles a cut
// trains its answer with its prompt out of view. Here each sequence of `capacity` = seq_len + 1
// tokens holds a set of whole documents, placed by best-fit decreasing: longest first, each into
// the fullest sequence it still fits. On chat records that leaves 0.2% padding where next fit in
// stream order leaves 11-18% (docs/perf.md, session 35). A document longer than a sequence is cut
// into pieces of `capacity` tokens that overlap by one, so that each of its targets is trained
// exactly once (as the stream's windows overlap); the last piece is packed like any document.
//
// The result is a pure function of the documents' starts and `capacity`, computed once when the
// loader opens the split: a resumed run, or one with more ranks, finds the same sequences.
#pragma once

#include <cstdint>
#include <vector>

namespace albion::data {

// Tokens [start, start + length) of the split's stream.
struct PackedSegment {
  std::uint64_t start = 0;
  std::uint64_t length = 0;
  bool operator==(const PackedSegment&) const = default;
};

struct DocumentPacking {
  // Sequence i holds segments[first[i] .. first[i + 1]) in stream order; first has size() + 1 entries.
  // The sequences come in the order of their first tokens in the stream.
  std::vector<std::uint64_t> first;
  std::vector<PackedSegment> segments;
  std::uint64_t documents = 0;      // documents packed
  std::uint64_t documents_cut = 0;  // of which longer than a sequence, cut into pieces
  std::uint64_t padding = 0;        // tokens of padding over all sequences
  std::uint64_t capacity = 0;       // tokens per sequence

  std::uint64_t size() const { return first.empty() ? 0 : first.size() - 1; }
  // Padding as a percentage of all the sequences' tokens (0 without sequences).
  double padding_percent() const {
    return size() == 0 ? 0.0 : 100.0 * static_cast<double>(padding) / static_cast<double>(size() * capacity);
  }
};

// `document_starts` are the documents' first stream positions in increasing order, then the
// stream's end. Documents of one token hold no target and are left out.
DocumentPacking pack_documents(const std::vector<std::uint64_t>& document_starts, std::uint64_t capacity);

// Of the documents that fit in a sequence of `capacity` tokens, how many the stream's windows
// (stride capacity - 1) cut between two: what data.packing = documents keeps whole.
std::uint64_t documents_cut_by_windows(const std::vector<std::uint64_t>& document_starts, std::uint64_t capacity);

}  // namespace albion::data
