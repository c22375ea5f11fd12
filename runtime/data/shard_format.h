// File: runtime/data/shard_format.h
// Internal to runtime/data: the HDF5-level pieces token_shard.cpp and sealed_token_shard.cpp
// share (kept out of the public headers so their users need no HDF5 include path).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <span>
#include <string>

#include "runtime/data/token_shard.h"

namespace albion::data {

// Writes the three arrays of a sealed shard into the open file `root` (sealed_token_shard.h).
void write_sealed_token_arrays(hid_t root, const std::string& path, TokenWidth width,
                               std::span<const std::uint32_t> tokens,
                               std::span<const std::uint64_t> doc_offsets,
                               std::span<const std::uint8_t> loss_mask, const ShardSealing& sealing);

// Checks the format attributes of an open shard file (IntegrityError otherwise).
void check_shard_format(hid_t root, bool encrypted, const std::string& path);

}  // namespace albion::data
