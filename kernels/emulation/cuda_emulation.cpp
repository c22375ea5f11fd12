// File: kernels/emulation/cuda_emulation.cpp
// The emulator's scheduler: a block's threads are ucontext fibers on the calling OS thread, taking
// turns between __syncthreads and warp shuffles; the blocks of a thread-block cluster take turns
// in one run, each with its own copy of the __shared__ arrays. See cuda_emulation.h for what it
// models.
#include "kernels/emulation/cuda_emulation.h"
#include "kernels/emulation/launch_counts.h"

#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <vector>

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

namespace albion::emulation {
namespace {

constexpr int kWarpSize = 32;
// Kernel frames are small; a guard page below each stack turns an overflow into a fault.
constexpr std::size_t kStackBytes = 256 * 1024;
constexpr std::size_t kGuardBytes = 4096;

class FiberStack {
 public:
  FiberStack() {
    void* memory = mmap(nullptr, kGuardBytes + kStackBytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("CUDA emulation: cannot map a fiber stack");
    mprotect(memory, kGuardBytes, PROT_NONE);
    base_ = static_cast<char*>(memory);
  }
  FiberStack(const FiberStack&) = delete;
  FiberStack& operator=(const FiberStack&) = delete;
  ~FiberStack() { munmap(base_, kGuardBytes + kStackBytes); }
  void* top() const { return base_ + kGuardBytes; }

 private:
  char* base_;
};

// Threads arrived at a barrier; the generation advances when the last expected one arrives.
struct Barrier {
  int arrived = 0;
  std::uint64_t generation = 0;
};

struct Warp {
  int size = 0;  // threads of the block in this warp (32 except perhaps the last)
  int live = 0;  // not yet returned from the kernel
  Barrier barrier;
  // Two sets of slots, used by alternate shuffles: a lane cannot publish into a set again before
  // every lane has passed the next shuffle's barrier, so after reading this one. One barrier per
  // shuffle, not two.
  std::array<std::array<std::array<unsigned char, 8>, kWarpSize>, 2> slots{};
};

enum class Waiting { kNothing, kBlockBarrier, kWarpBarrier, kClusterBarrier };

struct Fiber {
  ucontext_t context;
  uint3 index;
  int block = 0;   // rank of its block in the cluster
  int linear = 0;  // within its block
  bool done = false;
  Waiting waiting = Waiting::kNothing;
};

// A __shared__ array a block of a cluster declared during the run.
struct SharedArray {
  void* address;
  std::size_t bytes;
};

// One block of the cluster in flight.
struct Block {
  uint3 index;
  Barrier barrier;
  int live = 0;
  std::unordered_set<const void*> fresh;  // __shared__ arrays poisoned for this block
  // Its copy of each SharedArray while another block of the cluster holds the arrays themselves
  // (empty: not declared by this block yet).
  std::vector<std::vector<unsigned char>> shared_copies;
};

// One cluster of blocks (one block outside a cluster launch) in flight on this OS thread.
struct BlockRun {
  const std::function<void()>* body = nullptr;
  ucontext_t scheduler;
  std::vector<Fiber> fibers;  // block by block
  std::vector<Warp> warps;    // block by block
  std::vector<Block> blocks;
  int warps_per_block = 0;
  Barrier cluster_barrier;
  int live = 0;  // in the whole cluster
  std::vector<SharedArray> shared_arrays;  // only where the cluster has several blocks
  int holder = 0;                          // the block whose values the __shared__ arrays hold
  Fiber* current = nullptr;
  bool progress = false;  // some thread arrived, was released or finished during this round
  std::string error;      // set by a fiber that cannot go on; the scheduler throws it
};

struct ThreadState {
  const char* kernel = nullptr;  // the launch in progress, for fault reports
  Schedule schedule = Schedule::kForward;
  std::mt19937_64 random{0};
  cudaError_t last_error = cudaSuccess;
  std::vector<std::unique_ptr<FiberStack>> stacks;
  BlockRun* run = nullptr;
};

thread_local ThreadState state;

BlockRun& active_run() {
  if (state.run == nullptr) throw std::logic_error("CUDA emulation: a device function ran outside a launch");
  return *state.run;
}

void yield_to_scheduler() {
  BlockRun& run = *state.run;
  swapcontext(&run.current->context, &run.scheduler);
}

// Reports a fault from inside a fiber: never returns, the scheduler abandons the block and throws.
// Abandoned fibers are not unwound: what their frames own (a message's temporaries) leaks, a few
// bytes per reported fault.
[[noreturn]] void fail(std::string message) {
  BlockRun& run = *state.run;
  run.error = std::move(message);
  for (;;) yield_to_scheduler();
}

void release(Barrier& barrier, BlockRun& run) {
  barrier.arrived = 0;
  ++barrier.generation;
  run.progress = true;
}

// Waits until `expected` threads have arrived; `expected` is re-read because threads that return
// from the kernel stop counting (as on the GPU, where exited threads do not hold a barrier).
void wait_at(Barrier& barrier, const int& expected, Waiting kind) {
  BlockRun& run = *state.run;
  const std::uint64_t generation = barrier.generation;
  run.progress = true;
  if (++barrier.arrived >= expected) {
    release(barrier, run);
    return;
  }
  run.current->waiting = kind;
  while (barrier.generation == generation) yield_to_scheduler();
  run.current->waiting = Waiting::kNothing;
}

Warp& warp_of(BlockRun& run, const Fiber& fiber) {
  return run.warps[fiber.block * run.warps_per_block + fiber.linear / kWarpSize];
}

void fiber_main() {
  BlockRun& run = *state.run;
  (*run.body)();
  Fiber& self = *run.current;
  self.done = true;
  run.progress = true;
  --run.live;
  Block& block = run.blocks[self.block];
  --block.live;
  Warp& warp = warp_of(run, self);
  --warp.live;
  // A thread that leaves may be the last one a barrier was waiting for.
  if (block.barrier.arrived > 0 && block.barrier.arrived >= block.live) release(block.barrier, run);
  if (warp.barrier.arrived > 0 && warp.barrier.arrived >= warp.live) release(warp.barrier, run);
  if (run.cluster_barrier.arrived > 0 && run.cluster_barrier.arrived >= run.live) release(run.cluster_barrier, run);
  // Returning resumes uc_link, the scheduler.
}

std::string describe_deadlock(const BlockRun& run) {
  int at_block = 0, at_warp = 0, at_cluster = 0;
  for (const Fiber& f : run.fibers) {
    if (f.done) continue;
    if (f.waiting == Waiting::kBlockBarrier) ++at_block;
    if (f.waiting == Waiting::kWarpBarrier) ++at_warp;
    if (f.waiting == Waiting::kClusterBarrier) ++at_cluster;
  }
  const int exited = static_cast<int>(run.fibers.size()) - run.live;
  std::string text = std::to_string(at_block) + " threads wait at __syncthreads, " + std::to_string(at_warp) +
                     " at a warp shuffle, ";
  if (run.blocks.size() > 1) text += std::to_string(at_cluster) + " at the cluster barrier, ";
  return text + std::to_string(exited) + " have returned";
}

// Gives the __shared__ arrays to `block`: the holder's values go to its copies (of the arrays it
// declared), and the arrays take `block`'s copies, or poison where it has none yet.
void hold_shared_for(BlockRun& run, int block) {
  if (block == run.holder) return;
  Block& from = run.blocks[run.holder];
  Block& to = run.blocks[block];
  from.shared_copies.resize(run.shared_arrays.size());
  to.shared_copies.resize(run.shared_arrays.size());
  for (std::size_t i = 0; i < run.shared_arrays.size(); ++i) {
    const SharedArray& array = run.shared_arrays[i];
    const auto* bytes = static_cast<const unsigned char*>(array.address);
    if (from.fresh.contains(array.address)) from.shared_copies[i].assign(bytes, bytes + array.bytes);
    if (to.shared_copies[i].empty()) {
      std::memset(array.address, 0xFF, array.bytes);
    } else {
      std::memcpy(array.address, to.shared_copies[i].data(), array.bytes);
    }
  }
  run.holder = block;
}

std::string coordinates(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

// 0 .. n-1 in the schedule's order: the threads' turns in a round, or the grid's blocks.
template <typename Index>
std::vector<Index> schedule_order(Index n) {
  std::vector<Index> order(n);
  std::iota(order.begin(), order.end(), Index{0});
  if (state.schedule == Schedule::kReverse) std::reverse(order.begin(), order.end());
  if (state.schedule == Schedule::kShuffled) std::shuffle(order.begin(), order.end(), state.random);
  return order;
}

// Runs the blocks of one cluster (one block outside a cluster launch) to completion; their
// threads take turns in the schedule's order, across the blocks.
void run_blocks(BlockRun& run, const std::vector<uint3>& blocks, dim3 block_dim) {
  const int threads = static_cast<int>(block_dim.x * block_dim.y * block_dim.z);
  const int cluster_threads = threads * static_cast<int>(blocks.size());
  while (state.stacks.size() < static_cast<std::size_t>(cluster_threads)) {
    state.stacks.push_back(std::make_unique<FiberStack>());
  }
  run.warps_per_block = (threads + kWarpSize - 1) / kWarpSize;
  run.fibers.assign(cluster_threads, Fiber{});
  run.warps.assign(run.warps_per_block * blocks.size(), Warp{});
  run.blocks.assign(blocks.size(), Block{});
  run.shared_arrays.clear();
  run.holder = 0;
  run.cluster_barrier = Barrier{};
  run.live = cluster_threads;
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    run.blocks[b].index = blocks[b];
    run.blocks[b].live = threads;
  }
  for (int i = 0; i < cluster_threads; ++i) {
    Fiber& f = run.fibers[i];
    const int t = i % threads;
    f.block = i / threads;
    f.linear = t;
    f.index = make_uint3(t % block_dim.x, t / block_dim.x % block_dim.y, t / (block_dim.x * block_dim.y));
    Warp& warp = warp_of(run, f);
    ++warp.size;
    ++warp.live;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = state.stacks[i]->top();
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &run.scheduler;
    makecontext(&f.context, fiber_main, 0);
  }
  std::vector<int> order = schedule_order(cluster_threads);
  while (run.live > 0) {
    run.progress = false;
    for (int t : order) {
      Fiber& f = run.fibers[t];
      if (f.done) continue;
      hold_shared_for(run, f.block);
      blockIdx = run.blocks[f.block].index;
      threadIdx = f.index;
      run.current = &f;
      swapcontext(&run.scheduler, &f.context);
      if (!run.error.empty()) {
        const std::string rank = blocks.size() > 1 ? " of cluster rank " + std::to_string(f.block) : "";
        throw std::runtime_error(run.error + " (thread " + coordinates(f.index) + rank + ")");
      }
    }
    if (run.live > 0 && !run.progress) throw std::runtime_error("deadlock: " + describe_deadlock(run));
    if (state.schedule == Schedule::kShuffled) std::shuffle(order.begin(), order.end(), state.random);  // next round
  }
}

// A kernel that touches memory outside its buffers (tests put a guard page after each) or
// overflows a fiber stack gets a segmentation fault; name the kernel, block and thread before the
// default action ends the process, as compute-sanitizer would on a GPU.
void report_fault(int signal, siginfo_t* info, void* /*context*/) {
  char message[320];
  int length = 0;
  if (state.run != nullptr && state.run->current != nullptr) {
    const uint3 thread = state.run->current->index;
    length = std::snprintf(message, sizeof(message),
                           "CUDA emulation: %s block (%u,%u,%u) thread (%u,%u,%u) touched address %p outside "
                           "its memory (signal %d)\n",
                           state.kernel, blockIdx.x, blockIdx.y, blockIdx.z, thread.x, thread.y, thread.z,
                           info->si_addr, signal);
  }
  if (length > 0) (void)!write(STDERR_FILENO, message, static_cast<std::size_t>(length));
  // SA_RESETHAND restored the default action: returning retries the access, which ends the process.
}

// Installs report_fault for one launch, on an alternate stack (the fault may be a fiber's
// overflowing stack), and restores the previous handlers after it.
class FaultReporter {
 public:
  FaultReporter() {
    thread_local std::vector<char> alternate_stack(64 * 1024);
    stack_t stack{};
    stack.ss_sp = alternate_stack.data();
    stack.ss_size = alternate_stack.size();
    sigaltstack(&stack, &previous_stack_);
    struct sigaction action {};
    action.sa_sigaction = report_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv_);
    sigaction(SIGBUS, &action, &previous_bus_);
  }
  FaultReporter(const FaultReporter&) = delete;
  FaultReporter& operator=(const FaultReporter&) = delete;
  ~FaultReporter() {
    sigaction(SIGSEGV, &previous_segv_, nullptr);
    sigaction(SIGBUS, &previous_bus_, nullptr);
    sigaltstack(&previous_stack_, nullptr);
  }

 private:
  stack_t previous_stack_{};
  struct sigaction previous_segv_ {};
  struct sigaction previous_bus_ {};
};

bool valid_configuration(dim3 grid, dim3 block, std::size_t dynamic_shared_bytes) {
  const std::uint64_t threads = std::uint64_t{block.x} * block.y * block.z;
  return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535 &&
         grid.z <= 65535 && threads >= 1 && threads <= 1024 && block.x <= 1024 && block.y <= 1024 &&
         block.z <= 64 && dynamic_shared_bytes <= 48 * 1024;
}

// Clusters along x only (what our kernels launch), of the portable sizes 1 to 8, dividing the grid.
bool valid_cluster(dim3 grid, unsigned cluster) {
  return cluster >= 1 && cluster <= 8 && grid.x % cluster == 0;
}

// Grids run per kernel name, across threads.
std::mutex launch_counts_mutex;
std::map<std::string, std::int64_t, std::less<>> launch_counts;

void count_launch(std::string_view kernel) {
  const std::string_view name = kernel.substr(0, kernel.find('<'));
  const std::lock_guard<std::mutex> lock(launch_counts_mutex);
  auto found = launch_counts.find(name);
  if (found == launch_counts.end()) found = launch_counts.emplace(std::string(name), 0).first;
  ++found->second;
}

}  // namespace

std::int64_t launches(std::string_view kernel) {
  const std::lock_guard<std::mutex> lock(launch_counts_mutex);
  const auto found = launch_counts.find(kernel);
  return found == launch_counts.end() ? 0 : found->second;
}

void fresh_shared(void* array, std::size_t bytes) {
  BlockRun& run = active_run();
  Block& block = run.blocks[run.current->block];
  if (!block.fresh.insert(array).second) return;  // another thread of this block got here first
  std::memset(array, 0xFF, bytes);
  if (run.blocks.size() == 1) return;
  const bool known = std::any_of(run.shared_arrays.begin(), run.shared_arrays.end(),
                                 [&](const SharedArray& a) { return a.address == array; });
  if (!known) run.shared_arrays.push_back({array, bytes});
}

void set_schedule(Schedule schedule, std::uint64_t seed) {
  state.schedule = schedule;
  state.random.seed(seed);
}

cudaError_t get_last_error() { return std::exchange(state.last_error, cudaSuccess); }

void sync_threads() {
  BlockRun& run = active_run();
  Block& block = run.blocks[run.current->block];
  wait_at(block.barrier, block.live, Waiting::kBlockBarrier);
}

unsigned cluster_rank() { return static_cast<unsigned>(active_run().current->block); }

void cluster_sync() {
  BlockRun& run = active_run();
  wait_at(run.cluster_barrier, run.live, Waiting::kClusterBarrier);
}

void* cluster_shared(void* address, unsigned rank) {
  BlockRun& run = active_run();
  const int self = run.current->block;
  if (rank >= run.blocks.size()) fail("map_shared_rank: rank " + std::to_string(rank) + " outside the cluster");
  if (static_cast<int>(rank) == self) return address;
  auto* byte = static_cast<unsigned char*>(address);
  for (std::size_t i = 0; i < run.shared_arrays.size(); ++i) {
    auto* first = static_cast<unsigned char*>(run.shared_arrays[i].address);
    if (byte < first || byte >= first + run.shared_arrays[i].bytes) continue;
    // The caller's block holds the arrays; every other block's values are in its copies.
    std::vector<std::vector<unsigned char>>& copies = run.blocks[rank].shared_copies;
    if (i >= copies.size() || copies[i].empty()) {
      fail("map_shared_rank: block rank " + std::to_string(rank) + " has not declared that array yet");
    }
    return copies[i].data() + (byte - first);
  }
  fail("map_shared_rank: the address is in no __shared__ array this cluster declared");
}

void shuffle_xor(unsigned mask, const void* value, void* result, std::size_t bytes, int lane_mask, int width) {
  BlockRun& run = active_run();
  if (mask != 0xffffffffu || width != kWarpSize) fail("__shfl_xor_sync: only full-warp shuffles are emulated");
  const int lane = run.current->linear % kWarpSize;
  Warp& warp = warp_of(run, *run.current);
  if (warp.size != kWarpSize || warp.live != kWarpSize) {
    fail("__shfl_xor_sync with a full mask in a warp of " + std::to_string(warp.live) +
         " live threads (undefined on the GPU)");
  }
  if (lane_mask < 0 || lane_mask >= kWarpSize) fail("__shfl_xor_sync: lane mask out of range");
  auto& slots = warp.slots[warp.barrier.generation % 2];
  std::memcpy(slots[lane].data(), value, bytes);
  wait_at(warp.barrier, warp.live, Waiting::kWarpBarrier);  // every lane has published
  std::memcpy(result, slots[lane ^ lane_mask].data(), bytes);
}

void run_grid(const char* kernel, dim3 grid, dim3 block, std::size_t dynamic_shared_bytes, unsigned cluster,
              const std::function<void()>& body) {
  if (state.run != nullptr) throw std::logic_error("CUDA emulation: a launch from inside a kernel");
  if (!valid_configuration(grid, block, dynamic_shared_bytes)) {
    state.last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (!valid_cluster(grid, cluster)) {
    state.last_error = cudaErrorInvalidClusterSize;
    return;
  }
  count_launch(kernel);
  const FaultReporter fault_reporter;
  BlockRun run;
  run.body = &body;
  state.run = &run;
  state.kernel = kernel;
  gridDim = grid;
  blockDim = block;
  try {
    // Clusters in the schedule's order: cluster c is blocks c * cluster .. c * cluster + cluster - 1
    // of the grid, counted along x first.
    std::vector<uint3> blocks(cluster);
    for (std::uint64_t c : schedule_order(std::uint64_t{grid.x} * grid.y * grid.z / cluster)) {
      for (unsigned r = 0; r < cluster; ++r) {
        const std::uint64_t b = c * cluster + r;
        blocks[r] = make_uint3(b % grid.x, b / grid.x % grid.y, b / (std::uint64_t{grid.x} * grid.y));
      }
      try {
        run_blocks(run, blocks, block);
      } catch (const std::runtime_error& e) {
        const std::string where = cluster > 1 ? " cluster from block " : " block ";
        throw std::runtime_error(std::string("CUDA emulation: ") + kernel + where + coordinates(blocks[0]) + ": " +
                                 e.what());
      }
    }
  } catch (...) {
    state.run = nullptr;
    throw;
  }
  state.run = nullptr;
}

}  // namespace albion::emulation
