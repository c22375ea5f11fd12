// File: runtime/data/sealed_token_shard.cpp
#include "runtime/data/sealed_token_shard.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "checkpoint/io/hdf5_io.h"
#include "runtime/data/shard_format.h"

namespace albion::data {

// The HDF5 helpers (checkpoint/io/hdf5_io.h), shared with checkpoint shards.
using namespace checkpoint;  // NOLINT(google-build-using-namespace)
namespace {

constexpr std::size_t kCachedChunks = 8;

std::uint64_t chunk_count(std::uint64_t elements, std::uint64_t per_chunk) {
  return (elements + per_chunk - 1) / per_chunk;
}

// Total sealed bytes of `elements` elements of `element_bytes` in chunks of `per_chunk`.
std::uint64_t sealed_array_bytes(std::uint64_t elements, std::size_t element_bytes, std::uint64_t per_chunk) {
  return elements * element_bytes + chunk_count(elements, per_chunk) * checkpoint::kChunkTagBytes;
}

// Seals `bytes` (elements of `element_bytes`) chunk by chunk, numbering chunks from `*next_index`.
std::vector<std::uint8_t> seal_array(checkpoint::ChunkCipher& cipher, const std::string& file_name,
                                     std::uint32_t file_index, const char* tensor,
                                     std::span<const std::uint8_t> bytes, std::size_t element_bytes,
                                     std::uint64_t per_chunk, std::uint64_t* next_index) {
  const std::uint64_t elements = bytes.size() / element_bytes;
  std::vector<std::uint8_t> sealed(sealed_array_bytes(elements, element_bytes, per_chunk));
  std::size_t in = 0;
  std::size_t out = 0;
  for (std::uint64_t c = 0; c < chunk_count(elements, per_chunk); ++c) {
    const std::size_t length = std::min<std::uint64_t>(per_chunk, elements - c * per_chunk) * element_bytes;
    cipher.seal({file_name, file_index, tensor, (*next_index)++}, bytes.subspan(in, length),
                std::span<std::uint8_t>(sealed).subspan(out, length + checkpoint::kChunkTagBytes));
    in += length;
    out += length + checkpoint::kChunkTagBytes;
  }
  return sealed;
}

template <typename T>
std::span<const std::uint8_t> as_bytes(std::span<const T> values) {
  return {reinterpret_cast<const std::uint8_t*>(values.data()), values.size_bytes()};
}

}  // namespace

void write_sealed_token_arrays(hid_t root, const std::string& path, TokenWidth width,
                               std::span<const std::uint32_t> tokens,
                               std::span<const std::uint64_t> doc_offsets,
                               std::span<const std::uint8_t> loss_mask, const ShardSealing& sealing) {
  ALBION_CHECK(sealing.cipher != nullptr && sealing.chunk_tokens > 0, "shard ", path, ": bad sealing");
  const std::string file_name = std::filesystem::path(path).filename().string();
  std::uint64_t next_index = 0;
  std::vector<std::uint16_t> narrow;
  std::span<const std::uint8_t> token_bytes_view = as_bytes(tokens);
  if (width == TokenWidth::kUint16) {
    narrow.assign(tokens.begin(), tokens.end());
    token_bytes_view = as_bytes(std::span<const std::uint16_t>(narrow));
  }
  auto write = [&](const char* name, const std::vector<std::uint8_t>& sealed) {
    write_contiguous_vector(root, name, H5T_STD_U8LE, H5T_NATIVE_UINT8, sealed.data(), sealed.size(), path);
  };
  write("tokens", seal_array(*sealing.cipher, file_name, sealing.file_index, "tokens", token_bytes_view,
                             token_bytes(width), sealing.chunk_tokens, &next_index));
  // Offsets are one chunk whatever their number.
  write("doc_offsets", seal_array(*sealing.cipher, file_name, sealing.file_index, "doc_offsets",
                                  as_bytes(doc_offsets), 8, doc_offsets.size(), &next_index));
  if (!loss_mask.empty()) {
    write("loss_mask", seal_array(*sealing.cipher, file_name, sealing.file_index, "loss_mask", loss_mask,
                                  1, sealing.chunk_tokens, &next_index));
  }
}

SealedTokenShard::SealedTokenShard(const std::string& path, checkpoint::ChunkCipher cipher,
                                   const SealedShardExpectation& expected)
    : path_(path),
      file_name_(std::filesystem::path(path).filename().string()),
      cipher_(std::move(cipher)),
      expected_(expected) {
  silence_hdf5_errors();
  ALBION_CHECK_AS(IntegrityError, H5Fis_hdf5(path.c_str()) > 0, path, ": not an HDF5 file");
  ContiguousDataset tokens;
  ContiguousDataset offsets;
  ContiguousDataset mask;
  {
    H5Handle file(ALBION_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), IntegrityError, path),
                  H5Fclose);
    check_shard_format(file.get(), /*encrypted=*/true, path);
    tokens = locate_contiguous(file.get(), "tokens", H5T_STD_U8LE, path);
    offsets = locate_contiguous(file.get(), "doc_offsets", H5T_STD_U8LE, path);
    if (expected_.has_loss_mask) mask = locate_contiguous(file.get(), "loss_mask", H5T_STD_U8LE, path);
  }
  // Sizes follow from the authenticated counts; the file must agree to the byte.
  const std::size_t width = token_bytes(expected_.width);
  token_chunks_ = chunk_count(expected_.tokens, expected_.chunk_tokens);
  const std::uint64_t offsets_bytes = (expected_.documents + 1) * 8 + checkpoint::kChunkTagBytes;
  ALBION_CHECK_AS(IntegrityError,
                  tokens.count == sealed_array_bytes(expected_.tokens, width, expected_.chunk_tokens) &&
                      offsets.count == offsets_bytes &&
                      (!expected_.has_loss_mask ||
                       mask.count == sealed_array_bytes(expected_.tokens, 1, expected_.chunk_tokens)),
                  path, ": sealed array sizes differ from the dataset manifest");
  mapping_ = std::make_unique<MappedFile>(path);
  ALBION_CHECK_AS(IntegrityError, mapping_->contains(tokens.offset, tokens.count) &&
                                      mapping_->contains(offsets.offset, offsets.count) &&
                                      (!expected_.has_loss_mask || mapping_->contains(mask.offset, mask.count)),
                  path, ": datasets extend past the end of the file (truncated?)");
  tokens_offset_ = tokens.offset;
  mask_offset_ = mask.offset;

  doc_offsets_.resize(expected_.documents + 1);
  cipher_.open({file_name_, expected_.file_index, "doc_offsets", token_chunks_},
               {mapping_->data() + offsets.offset, offsets.count},
               {reinterpret_cast<std::uint8_t*>(doc_offsets_.data()), doc_offsets_.size() * 8});
  ALBION_CHECK_AS(IntegrityError,
                  doc_offsets_.front() == 0 && doc_offsets_.back() == expected_.tokens &&
                      std::is_sorted(doc_offsets_.begin(), doc_offsets_.end()),
                  path, ": document offsets do not partition the tokens");
}

// Decrypted tokens are private data: wiped before their memory is freed (OPENSSL_cleanse, which
// the compiler cannot drop as a dead store, as it may a std::fill before a free).
SealedTokenShard::~SealedTokenShard() {
  for (CachedChunk& cached : cache_) OPENSSL_cleanse(cached.bytes.data(), cached.bytes.size());
}

const std::vector<std::uint8_t>& SealedTokenShard::chunk(const char* tensor, std::uint64_t array_offset,
                                                         std::uint64_t first_chunk_index,
                                                         std::uint64_t chunk, std::size_t element_bytes) {
  const std::uint64_t index = first_chunk_index + chunk;
  for (auto it = cache_.begin(); it != cache_.end(); ++it) {
    if (it->chunk_index == index) {
      cache_.splice(cache_.begin(), cache_, it);
      return cache_.front().bytes;
    }
  }
  const std::uint64_t per_chunk = expected_.chunk_tokens;
  const std::uint64_t elements = std::min(per_chunk, expected_.tokens - chunk * per_chunk);
  const std::uint64_t sealed_offset = array_offset + chunk * (per_chunk * element_bytes + checkpoint::kChunkTagBytes);
  CachedChunk entry{index, std::vector<std::uint8_t>(elements * element_bytes)};
  cipher_.open({file_name_, expected_.file_index, tensor, index},
               {mapping_->data() + sealed_offset, elements * element_bytes + checkpoint::kChunkTagBytes},
               entry.bytes);
  if (element_bytes > 1) {
    // Token ids must index the embedding table.
    std::uint32_t max_token = 0;
    if (element_bytes == 2) {
      const auto* t = reinterpret_cast<const std::uint16_t*>(entry.bytes.data());
      if (elements > 0) max_token = *std::max_element(t, t + elements);
    } else {
      const auto* t = reinterpret_cast<const std::uint32_t*>(entry.bytes.data());
      if (elements > 0) max_token = *std::max_element(t, t + elements);
    }
    ALBION_CHECK_AS(IntegrityError, max_token < expected_.vocab_size, path_, ": token id ", max_token,
                    " is outside the vocabulary of ", expected_.vocab_size);
  }
  if (cache_.size() >= kCachedChunks) {
    OPENSSL_cleanse(cache_.back().bytes.data(), cache_.back().bytes.size());
    cache_.pop_back();
  }
  cache_.push_front(std::move(entry));
  return cache_.front().bytes;
}

void SealedTokenShard::copy_tokens(std::uint64_t start, std::uint64_t count, std::int64_t* out) {
  ALBION_CHECK(start + count <= expected_.tokens, path_, ": token range past the end");
  const std::size_t width = token_bytes(expected_.width);
  while (count > 0) {
    const std::uint64_t c = start / expected_.chunk_tokens;
    const std::uint64_t within = start - c * expected_.chunk_tokens;
    const std::vector<std::uint8_t>& bytes = chunk("tokens", tokens_offset_, 0, c, width);
    const std::uint64_t n = std::min<std::uint64_t>(count, bytes.size() / width - within);
    if (width == 2) {
      const auto* t = reinterpret_cast<const std::uint16_t*>(bytes.data()) + within;
      std::copy(t, t + n, out);
    } else {
      const auto* t = reinterpret_cast<const std::uint32_t*>(bytes.data()) + within;
      std::copy(t, t + n, out);
    }
    out += n;
    start += n;
    count -= n;
  }
}

void SealedTokenShard::copy_loss_mask(std::uint64_t start, std::uint64_t count, std::uint8_t* out) {
  ALBION_CHECK(expected_.has_loss_mask && start + count <= expected_.tokens, path_, ": bad loss mask range");
  while (count > 0) {
    const std::uint64_t c = start / expected_.chunk_tokens;
    const std::uint64_t within = start - c * expected_.chunk_tokens;
    const std::vector<std::uint8_t>& bytes = chunk("loss_mask", mask_offset_, token_chunks_ + 1, c, 1);
    const std::uint64_t n = std::min<std::uint64_t>(count, bytes.size() - within);
    std::memcpy(out, bytes.data() + within, n);
    out += n;
    start += n;
    count -= n;
  }
}

}  // namespace albion::data
