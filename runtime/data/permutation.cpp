// File: runtime/data/permutation.cpp
#include "runtime/data/permutation.h"

#include "runtime/base/check.h"

namespace albion::data {
namespace {

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

Permutation::Permutation(std::uint64_t size, std::uint64_t seed) : size_(size) {
  ALBION_CHECK(size > 0, "permutation of an empty range");
  while (half_bits_ < 32 && (std::uint64_t{1} << (2 * half_bits_)) < size) ++half_bits_;
  std::uint64_t state = seed;
  for (std::uint64_t& key : keys_) key = state = mix(state);
}

std::uint64_t Permutation::encrypt(std::uint64_t value) const {
  const std::uint64_t mask = (std::uint64_t{1} << half_bits_) - 1;
  std::uint64_t left = value >> half_bits_;
  std::uint64_t right = value & mask;
  for (std::uint64_t key : keys_) {
    std::uint64_t next = left ^ (mix(right ^ key) & mask);
    left = right;
    right = next;
  }
  return (left << half_bits_) | right;
}

std::uint64_t Permutation::operator()(std::uint64_t index) const {
  ALBION_CHECK(index < size_, "permutation index ", index, " out of range ", size_);
  // Cycle walking: the domain is < 4x size, so this loops a few times on average.
  std::uint64_t value = encrypt(index);
  while (value >= size_) value = encrypt(value);
  return value;
}

}  // namespace albion::data
