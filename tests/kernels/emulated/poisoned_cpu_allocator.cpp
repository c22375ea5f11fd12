// File: tests/kernels/emulated/poisoned_cpu_allocator.cpp
// kernels_on_emulator_test's "device memory" is CPU memory. Every CPU allocation of that test comes
// filled with 0xFF bytes, a NaN in fp32, bf16 and fp64, so an output element a kernel (or a torch
// layer's scratch sizing) leaves unwritten fails the comparison instead of passing on a zero or a
// stale value: what poison_kernel_allocator does for the GPU runs of the same suites.
#include <c10/core/CPUAllocator.h>

#include <cstring>

namespace albion::kernels {
namespace {

class PoisonedCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(std::size_t bytes) override {
    c10::DataPtr memory = base()->allocate(bytes);
    if (bytes > 0) std::memset(memory.get(), 0xFF, bytes);
    return memory;
  }
  c10::DeleterFnPtr raw_deleter() const override { return base()->raw_deleter(); }
  void copy_data(void* destination, const void* source, std::size_t bytes) const override {
    std::memcpy(destination, source, bytes);
  }

 private:
  static c10::Allocator* base() { return c10::GetDefaultCPUAllocator(); }
};

PoisonedCpuAllocator poisoned_allocator;
// Above the default's priority 0; libc10's own registration ran before this executable's.
const bool installed = [] {
  c10::SetCPUAllocator(&poisoned_allocator, /*priority=*/1);
  return true;
}();

}  // namespace
}  // namespace albion::kernels
