// File: runtime/data/permutation.h
// A pseudo-random permutation of [0, n) computed element by element in O(1) memory: a 4-round
// Feistel network over the smallest power-of-four domain >= n, with cycle walking back into
// [0, n). The loader shuffles billions of windows per epoch this way without storing an index
// array, and a resumed run recomputes exactly the same order from (seed, epoch).
#pragma once

#include <cstdint>

namespace albion::data {

class Permutation {
 public:
  Permutation(std::uint64_t size, std::uint64_t seed);
  std::uint64_t size() const { return size_; }
  // The element at position `index` (< size()); a bijection on [0, size()).
  std::uint64_t operator()(std::uint64_t index) const;

 private:
  std::uint64_t encrypt(std::uint64_t value) const;

  std::uint64_t size_;
  unsigned half_bits_ = 1;  // each Feistel half has this many bits
  std::uint64_t keys_[4];
};

}  // namespace albion::data
