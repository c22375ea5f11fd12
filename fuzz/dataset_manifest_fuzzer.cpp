// File: fuzz/dataset_manifest_fuzzer.cpp
// libFuzzer target: any bytes as a token dataset's dataset.json (read by `data inspect`, the
// loader and the trainer; a plaintext one is not authenticated, so whoever can write the dataset
// directory controls it). The reader must accept or throw albion::Error, never crash, hang or
// convert a number out of range (UBSan); an accepted manifest must write back (manifest_to_json)
// to text that reads back to itself, and the header of an encrypted one must read on its own.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/base/error.h"
#include "runtime/data/dataset_manifest.h"

namespace data = albion::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(bytes), size);
  try {
    const std::string written = data::manifest_to_json(data::parse_dataset_manifest(text, "fuzz"));
    if (data::manifest_to_json(data::parse_dataset_manifest(written, "fuzz")) != written) std::abort();
  } catch (const albion::Error&) {
    // Refused, as damage must be; without a key, an encrypted manifest is refused too, after its
    // header has been read.
  }
  return 0;
}
