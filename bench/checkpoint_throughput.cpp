// File: bench/checkpoint_throughput.cpp
// Checkpoint save and load throughput, encrypted vs plaintext, next to the disk's raw sequential
// write speed, all in one run with the variants interleaved round by round (so drift in a shared
// machine's disk or CPU hits them alike); prints each round and the medians. Also the training
// stall of an asynchronous checkpoint: the snapshot copy of the state (what the trainer waits for)
// against a synchronous encrypted save.
//   build/bench/checkpoint_throughput [--gib 2] [--rounds 3] [--threads 2] [--dir runs/bench-checkpoint]
// Saves include every fsync; loads authenticate every shard and chunk, from the page cache.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/format/checkpoint_writer.h"
#include "checkpoint/io/unique_fd.h"
#include "checkpoint/keys/key_file.h"
#include "runtime/base/remove_tree.h"

namespace {

namespace fs = std::filesystem;
namespace ckpt = albion::checkpoint;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Model-like state: 256 MiB fp32 tensors of varied values (a constant page would flatter nothing
// here, but keeps the CPU honest about touching every byte).
struct State {
  std::vector<std::vector<float>> tensors;
  explicit State(std::size_t bytes) {
    const std::size_t per_tensor = std::size_t{256} << 20;
    for (std::size_t done = 0; done < bytes; done += per_tensor) {
      tensors.emplace_back(std::min(per_tensor, bytes - done) / 4);
      float x = static_cast<float>(tensors.size());
      for (float& v : tensors.back()) v = (x = x * 1.0001f + 0.5f);
    }
  }
  std::vector<ckpt::TensorSlice> slices() const {
    std::vector<ckpt::TensorSlice> out;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const auto n = static_cast<std::int64_t>(tensors[i].size());
      out.push_back({"model.t" + std::to_string(i), "F32", {n}, 0, n,
                     {reinterpret_cast<const std::uint8_t*>(tensors[i].data()), tensors[i].size() * 4}});
    }
    return out;
  }
  std::size_t bytes() const {
    std::size_t b = 0;
    for (const auto& t : tensors) b += t.size() * 4;
    return b;
  }
};

// dd-like: sequential write() of 4 MiB blocks, then fsync.
double raw_write(const fs::path& path, const State& state) {
  const auto start = Clock::now();
  ckpt::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  for (const auto& t : state.tensors) {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(t.data());
    for (std::size_t at = 0; at < t.size() * 4; at += 4 << 20) {
      ckpt::write_all(fd.get(), bytes + at, std::min<std::size_t>(4 << 20, t.size() * 4 - at), path);
    }
  }
  ckpt::fsync_or_throw(fd.get(), path);
  fd.close(path);
  return seconds_since(start);
}

double save(const fs::path& dir, const State& state, const ckpt::KeyProvider* key, int threads) {
  ckpt::SingleProcessGroup group;
  ckpt::CheckpointOptions options;
  options.directory = dir;
  options.key = key;
  options.keep = 1;
  options.shard.threads = threads;
  ckpt::CheckpointWriter writer(options, group);
  const auto start = Clock::now();
  writer.save({1, state.slices(), "", "{}", 1});
  return seconds_since(start);
}

double load(const fs::path& dir, const State& state, const ckpt::KeyProvider* key, int threads) {
  const auto start = Clock::now();
  ckpt::CheckpointReader reader(dir / "step-00000001", key, threads);
  std::vector<std::uint8_t> out;
  for (std::size_t i = 0; i < state.tensors.size(); ++i) {
    out.resize(state.tensors[i].size() * 4);
    reader.read("model.t" + std::to_string(i), 0, static_cast<std::int64_t>(state.tensors[i].size()), out);
    if (std::memcmp(out.data(), state.tensors[i].data(), out.size()) != 0) {
      std::fprintf(stderr, "load returned wrong bytes\n");
      std::exit(1);
    }
  }
  return seconds_since(start);
}

// What an asynchronous checkpoint holds the trainer for: copying the state into the snapshot
// buffers, allocated on the first checkpoint and reused after (runtime/train/training_state.h).
double snapshot(const State& state, std::vector<std::vector<float>>& buffers) {
  if (buffers.empty()) {
    for (const auto& t : state.tensors) buffers.emplace_back(t.size(), 0.0f);
  }
  const auto start = Clock::now();
  for (std::size_t i = 0; i < state.tensors.size(); ++i) {
    std::memcpy(buffers[i].data(), state.tensors[i].data(), state.tensors[i].size() * 4);
  }
  return seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  double gib = 2;
  int rounds = 3;
  int threads = 2;
  fs::path dir = "runs/bench-checkpoint";
  // Flags come in pairs; an odd one out (--help, a flag without its value) gets the usage.
  if (argc % 2 == 0) {
    std::fprintf(stderr, "usage: %s [--gib G] [--rounds N] [--threads T] [--dir DIR]\n", argv[0]);
    return 2;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--gib") gib = std::stod(argv[i + 1]);
    else if (flag == "--rounds") rounds = std::stoi(argv[i + 1]);
    else if (flag == "--threads") threads = std::stoi(argv[i + 1]);
    else if (flag == "--dir") dir = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s [--gib G] [--rounds N] [--threads T] [--dir DIR]\n", argv[0]);
      return 2;
    }
  }
  albion::remove_tree(dir.string());
  fs::create_directories(dir);
  ckpt::generate_key_file(dir / "kek", ckpt::KeyFileOverwrite::kRefuse);
  const auto key = ckpt::open_key_provider("file:" + (dir / "kek").string());
  const State state(static_cast<std::size_t>(gib * (1ull << 30)));
  const double gb = static_cast<double>(state.bytes()) / 1e9;
  std::printf("state %.2f GB in %zu tensors, %d encryption threads, %d rounds, directory %s\n", gb,
              state.tensors.size(), threads, rounds, dir.c_str());
  std::vector<double> raw, save_plain, save_enc, load_plain, load_enc, snap;
  std::vector<std::vector<float>> snapshot_buffers;
  for (int r = 0; r < rounds; ++r) {
    raw.push_back(raw_write(dir / "raw.bin", state));
    fs::remove(dir / "raw.bin");
    save_plain.push_back(save(dir / "plain", state, nullptr, threads));
    load_plain.push_back(load(dir / "plain", state, nullptr, threads));
    albion::remove_tree((dir / "plain").string());
    save_enc.push_back(save(dir / "enc", state, key.get(), threads));
    load_enc.push_back(load(dir / "enc", state, key.get(), threads));
    albion::remove_tree((dir / "enc").string());
    snap.push_back(snapshot(state, snapshot_buffers));
    std::printf("round %d: raw write %.2f GB/s | save plain %.2f, encrypted %.2f GB/s | load plain %.2f, "
                "encrypted %.2f GB/s | snapshot %.3f s\n",
                r + 1, gb / raw.back(), gb / save_plain.back(), gb / save_enc.back(), gb / load_plain.back(),
                gb / load_enc.back(), snap.back());
    std::fflush(stdout);
  }
  const double m_raw = median(raw), m_sp = median(save_plain), m_se = median(save_enc), m_lp = median(load_plain),
               m_le = median(load_enc), m_snap = median(snap);
  std::printf("\nmedians over %d rounds (%.2f GB):\n", rounds, gb);
  std::printf("  raw sequential write + fsync   %6.2f GB/s  (%.2f s)\n", gb / m_raw, m_raw);
  std::printf("  save plaintext                 %6.2f GB/s  (%.2f s)\n", gb / m_sp, m_sp);
  std::printf("  save encrypted                 %6.2f GB/s  (%.2f s)  = %.2fx plaintext\n", gb / m_se, m_se, m_sp / m_se);
  std::printf("  load plaintext                 %6.2f GB/s  (%.2f s)\n", gb / m_lp, m_lp);
  std::printf("  load encrypted                 %6.2f GB/s  (%.2f s)  = %.2fx plaintext\n", gb / m_le, m_le, m_lp / m_le);
  std::printf("  async stall (snapshot copy)    %6.3f s = %.1f%% of a synchronous encrypted save\n", m_snap,
              100 * m_snap / m_se);
  albion::remove_tree(dir.string());
  return 0;
}
