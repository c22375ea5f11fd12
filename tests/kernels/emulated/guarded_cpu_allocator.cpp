// File: tests/kernels/emulated/guarded_cpu_allocator.cpp
// In the tests that run the torch layers over the kernel emulator (kernels_on_emulator_test,
// models_on_emulator_test), "device memory" is CPU memory. Every CPU allocation there is made as
// unforgiving as a GPU's under compute-sanitizer, so that a kernel, or a torch layer that sizes a
// scratch buffer or an output wrongly, fails at once instead of passing by luck:
// - it comes filled with 0xFF bytes, a NaN in fp32, bf16 and fp64: an element left unwritten fails
//   the comparison (what poison_kernel_allocator does for the GPU runs of the same suites);
// - its end touches an inaccessible page (guarded_memory.h): a read or write past it faults;
// - the bytes around it within its pages stay 0xFF, checked when it is freed: a write into the
//   alignment padding past the end, or before the start, aborts naming the allocation's size.
#include <c10/core/CPUAllocator.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "tests/kernels/emulated/guarded_memory.h"

namespace albion::kernels::emulated {
namespace {

constexpr std::size_t kAlignment = 64;  // torch's own CPU alignment (c10::gAlignment)
constexpr unsigned char kPoison = 0xFF;

struct Block {
  GuardedMemory memory;
  std::size_t bytes = 0;
};

// Keyed by the data pointer, so DataPtrs stay "simple" (context == data) as torch's raw_allocate needs.
std::mutex blocks_mutex;
std::unordered_map<void*, Block>& blocks() {
  static auto* map = new std::unordered_map<void*, Block>();  // outlives static destructors
  return *map;
}

bool poisoned(const char* begin, const char* end) {
  for (const char* p = begin; p < end; ++p) {
    if (static_cast<unsigned char>(*p) != kPoison) return false;
  }
  return true;
}

void release(void* data) {
  if (data == nullptr) return;
  Block block;
  {
    const std::lock_guard<std::mutex> lock(blocks_mutex);
    auto found = blocks().find(data);
    if (found == blocks().end()) {
      std::fprintf(stderr, "guarded CPU allocator: freeing %p, which it did not allocate\n", data);
      std::abort();
    }
    block = found->second;
    blocks().erase(found);
  }
  const GuardedMemory& m = block.memory;
  const char* guard_page = m.base + m.mapped_bytes - static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  if (!poisoned(m.base, m.data) || !poisoned(m.data + block.bytes, guard_page)) {
    std::fprintf(stderr, "guarded CPU allocator: something wrote outside a %zu-byte allocation\n", block.bytes);
    std::abort();
  }
  unmap_guarded(m);
}

class GuardedCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t bytes) override {
    if (bytes == 0) return {nullptr, nullptr, &release, c10::Device(c10::DeviceType::CPU)};  // as c10's own
    const GuardedMemory memory = map_guarded(bytes, kAlignment);
    const std::size_t writable = memory.mapped_bytes - static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    std::memset(memory.base, kPoison, writable);
    {
      const std::lock_guard<std::mutex> lock(blocks_mutex);
      blocks()[memory.data] = Block{memory, bytes};
    }
    return {memory.data, memory.data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* destination, const void* source, std::size_t bytes) const override {
    std::memcpy(destination, source, bytes);
  }
};

GuardedCpuAllocator guarded_allocator;
// Above the default's priority 0; libc10's own registration ran before this executable's.
const bool installed = [] {
  c10::SetCPUAllocator(&guarded_allocator, /*priority=*/1);
  return true;
}();

}  // namespace
}  // namespace albion::kernels::emulated
