// File: bench/chunk_cipher_throughput.cpp
// Single-thread AES-256-GCM throughput of ChunkCipher, as a checkpoint uses it: seal then open
// TOTAL MiB in CHUNK MiB chunks (defaults 256 and 4), in place, best of a few passes.
//   build/bench/chunk_cipher_throughput [TOTAL_MIB [CHUNK_MIB]]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "checkpoint/crypto/chunk_cipher.h"

namespace {

using albion::checkpoint::ChunkCipher;
using albion::checkpoint::ChunkId;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t total_mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  const std::size_t chunk_mib = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 4;
  if (total_mib == 0 || chunk_mib == 0 || total_mib % chunk_mib != 0) {
    std::fprintf(stderr, "usage: %s [TOTAL_MIB [CHUNK_MIB]] (TOTAL a multiple of CHUNK)\n", argv[0]);
    return 2;
  }
  const std::size_t chunk_bytes = chunk_mib << 20;
  const std::size_t chunks = total_mib / chunk_mib;
  // One buffer per chunk (sealed in place), so the data set is as large as a real one.
  std::vector<std::vector<std::uint8_t>> buffers(chunks, std::vector<std::uint8_t>(ChunkCipher::sealed_size(chunk_bytes)));
  for (std::size_t c = 0; c < chunks; ++c) {
    for (std::size_t i = 0; i < chunk_bytes; i += 4096) buffers[c][i] = static_cast<std::uint8_t>(c + i);
  }
  ChunkCipher cipher(albion::checkpoint::DataKey::generate(), "bench");
  double best_seal = 1e30;
  double best_open = 1e30;
  for (int pass = 0; pass < 3; ++pass) {
    auto start = Clock::now();
    for (std::size_t c = 0; c < chunks; ++c) {
      cipher.seal(ChunkId{"bench.h5", 0, "tensor", c}, std::span(buffers[c]).first(chunk_bytes), buffers[c]);
    }
    best_seal = std::min(best_seal, seconds_since(start));
    start = Clock::now();
    for (std::size_t c = 0; c < chunks; ++c) {
      cipher.open(ChunkId{"bench.h5", 0, "tensor", c}, buffers[c], std::span(buffers[c]).first(chunk_bytes));
    }
    best_open = std::min(best_open, seconds_since(start));
  }
  const double bytes = static_cast<double>(chunks * chunk_bytes);
  std::printf("AES-256-GCM, 1 thread, %zu MiB in %zu MiB chunks (best of 3): seal %.2f GB/s, open %.2f GB/s\n",
              total_mib, chunk_mib, bytes / best_seal / 1e9, bytes / best_open / 1e9);
  return 0;
}
