// File: tests/kernels/emulated/guarded_memory.h
// Memory for kernels run on the CPU emulator (kernels/emulation/), guarded like a GPU under
// compute-sanitizer: the (aligned) end of the block touches an inaccessible page, so a kernel that
// reads or writes past it faults at once.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <new>

namespace albion::kernels::emulated {

struct GuardedMemory {
  char* base = nullptr;  // the whole mapping, guard page included
  std::size_t mapped_bytes = 0;
  char* data = nullptr;  // `bytes` rounded up to the alignment, ending at the guard page
};

inline GuardedMemory map_guarded(std::size_t bytes, std::size_t alignment) {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t used = (bytes + alignment - 1) / alignment * alignment;
  GuardedMemory memory;
  memory.mapped_bytes = (used + page - 1) / page * page + page;
  void* mapped = mmap(nullptr, memory.mapped_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) throw std::bad_alloc();
  memory.base = static_cast<char*>(mapped);
  if (mprotect(memory.base + memory.mapped_bytes - page, page, PROT_NONE) != 0) {
    munmap(mapped, memory.mapped_bytes);
    throw std::bad_alloc();
  }
  memory.data = memory.base + memory.mapped_bytes - page - used;
  return memory;
}

inline void unmap_guarded(const GuardedMemory& memory) {
  if (memory.base != nullptr) munmap(memory.base, memory.mapped_bytes);
}

}  // namespace albion::kernels::emulated
