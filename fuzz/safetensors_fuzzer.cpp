// File: fuzz/safetensors_fuzzer.cpp
// libFuzzer target: any bytes as a safetensors file (model.init reads weights downloaded from
// anywhere). The header parser must accept or throw albion::Error, never crash, hang or read out
// of bounds, and every entry it returns must lie inside the file.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "checkpoint/export/safetensors.h"
#include "runtime/base/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const albion::checkpoint::SafetensorsIndex index =
        albion::checkpoint::parse_safetensors_header(std::span<const std::uint8_t>(data, size), "fuzz");
    for (const auto& entry : index.entries) {
      if (entry.begin > entry.end || index.data_start + entry.end > size) std::abort();
    }
  } catch (const albion::Error&) {
  }
  return 0;
}
