// File: checkpoint/format/shard_reader.cpp
#include "checkpoint/format/shard_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "checkpoint/crypto/chunk_cipher.h"
#include "checkpoint/crypto/sha256.h"
#include "checkpoint/io/hdf5_io.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

std::uint64_t tag_bytes(bool sealed) { return sealed ? kChunkTagBytes : 0; }

// Multiplication and addition that report overflow instead of wrapping.
bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }
bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) { return !__builtin_add_overflow(a, b, &out); }

// Runs body(k) for k in [0, n) on up to `threads` threads; rethrows the first failure.
template <typename Body>
void parallel_for(std::uint64_t n, int threads, Body body) {
  const std::uint64_t workers = std::max<std::uint64_t>(1, std::min<std::uint64_t>(threads, n));
  if (workers == 1) {
    for (std::uint64_t k = 0; k < n; ++k) body(k);
    return;
  }
  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr failure;
  std::mutex mutex;
  std::vector<std::thread> pool;
  for (std::uint64_t t = 0; t < workers; ++t) {
    pool.emplace_back([&] {
      try {
        for (std::uint64_t k = next++; k < n && !failed; k = next++) body(k);
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!failure) failure = std::current_exception();
        failed = true;
      }
    });
  }
  for (std::thread& thread : pool) thread.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

void validate_shard_record(const ShardRecord& record, std::uint64_t chunk_bytes, bool sealed, const std::string& what) {
  auto fail = [&](const std::string& why) { throw IntegrityError(str_cat(what, ": ", record.file, ": ", why)); };
  if (chunk_bytes == 0) fail("chunk size is zero");
  std::uint64_t data_end = 0;
  if (!checked_add(record.data_offset, record.data_bytes, data_end) || data_end > record.file_bytes) {
    fail("data region lies outside the file");
  }
  std::uint64_t expected_position = 0;
  std::uint64_t expected_chunk = 0;
  for (const SliceRecord& slice : record.slices) {
    const std::size_t element = dtype_size(slice.dtype);
    std::uint64_t total = 1;
    for (std::int64_t dim : slice.global_shape) {
      if (dim < 0 || !checked_mul(total, static_cast<std::uint64_t>(dim), total)) fail("bad shape of " + slice.name);
    }
    std::uint64_t bytes = 0;
    std::uint64_t end = 0;
    if (element == 0 || slice.offset < 0 || slice.numel < 0 ||
        !checked_add(static_cast<std::uint64_t>(slice.offset), static_cast<std::uint64_t>(slice.numel), end) ||
        end > total || !checked_mul(static_cast<std::uint64_t>(slice.numel), element, bytes)) {
      fail("bad slice of " + slice.name);
    }
    const std::uint64_t chunks = bytes / chunk_bytes + (bytes % chunk_bytes != 0);
    std::uint64_t stored = 0;
    if (slice.chunk_count != chunks || slice.first_chunk != expected_chunk ||
        slice.data_position != expected_position || !checked_mul(chunks, tag_bytes(sealed), stored) ||
        !checked_add(stored, bytes, stored) || !checked_add(expected_position, stored, expected_position) ||
        expected_position > record.data_bytes) {
      fail("chunks of " + slice.name + " do not match the data region");
    }
    expected_chunk += chunks;
  }
  if (expected_position != record.data_bytes) fail("data region size does not match its slices");
}

ShardReader::ShardReader(const std::filesystem::path& path, ShardRecord record, const DataKey* key,
                         std::string checkpoint_id, std::uint64_t chunk_bytes, int threads, const ByteProgress& hashed)
    : path_(path), record_(std::move(record)), key_(key), checkpoint_id_(std::move(checkpoint_id)),
      chunk_bytes_(chunk_bytes), threads_(threads) {
  const std::string where = path_.string();
  validate_shard_record(record_, chunk_bytes_, key_ != nullptr, where);
  struct stat info {};
  ALBION_CHECK_AS(IntegrityError, ::stat(where.c_str(), &info) == 0 && S_ISREG(info.st_mode), where,
                  ": shard file is missing (the manifest lists it)");
  ALBION_CHECK_AS(IntegrityError, static_cast<std::uint64_t>(info.st_size) == record_.file_bytes, where,
                  ": size check failed: ", info.st_size, " bytes, the manifest says ", record_.file_bytes,
                  " (truncated or replaced)");
  mapping_ = std::make_unique<MappedFile>(where, MappedFile::Access::kSequential);
  ALBION_CHECK_AS(IntegrityError, mapping_->size() == record_.file_bytes, where, ": size changed while opening");
  if (key_ == nullptr) verify_digest(hashed);  // a plaintext chunk has no tag: the file's digest is all there is
}

void ShardReader::verify_digest(const ByteProgress& hashed) const {
  const std::string where = path_.string();
  Sha256Stream digest;
  constexpr std::uint64_t kPiece = 64 << 20;  // progress steps; the digest is the same
  for (std::uint64_t at = 0; at < mapping_->size(); at += kPiece) {
    const std::uint64_t piece = std::min<std::uint64_t>(kPiece, mapping_->size() - at);
    digest.update(std::span<const std::uint8_t>(mapping_->data() + at, piece));
    if (hashed) hashed(piece);
  }
  ALBION_CHECK_AS(IntegrityError, digest.finish_hex() == record_.sha256, where,
                  ": SHA-256 check failed: the file is not the one the manifest records "
                  "(modified, or copied from another checkpoint)");
}

ShardReader::~ShardReader() = default;

void ShardReader::read(const SliceRecord& slice, std::int64_t first, std::int64_t count,
                       std::span<std::uint8_t> out) const {
  const std::size_t element = dtype_size(slice.dtype);
  ALBION_CHECK(first >= 0 && count >= 0 && first + count <= slice.numel, path_.string(), ": read of ", slice.name,
               " outside the slice");
  ALBION_CHECK(out.size() == static_cast<std::uint64_t>(count) * element, path_.string(), ": read of ",
               slice.name, " into a buffer of the wrong size");
  if (count == 0) return;
  const std::uint64_t total = slice_bytes(slice);
  const std::uint64_t begin = static_cast<std::uint64_t>(first) * element;
  const std::uint64_t end = begin + out.size();
  const std::uint64_t first_chunk = begin / chunk_bytes_;
  const std::uint64_t last_chunk = (end - 1) / chunk_bytes_;
  const std::uint64_t stride = chunk_bytes_ + tag_bytes(key_ != nullptr);
  const std::uint8_t* data = mapping_->data() + record_.data_offset + slice.data_position;
  try {
    parallel_for(last_chunk - first_chunk + 1, threads_, [&](std::uint64_t i) {
      const std::uint64_t k = first_chunk + i;
      const std::uint64_t plain = chunk_plain_bytes(total, chunk_bytes_, k);
      const std::uint64_t chunk_begin = k * chunk_bytes_;
      // The part of this chunk the caller wants, and where it goes.
      const std::uint64_t from = std::max(begin, chunk_begin);
      const std::uint64_t to = std::min(end, chunk_begin + plain);
      std::uint8_t* destination = out.data() + (from - begin);
      const std::uint8_t* stored = data + k * stride;
      if (key_ == nullptr) {
        std::memcpy(destination, stored + (from - chunk_begin), to - from);
        return;
      }
      thread_local std::vector<std::uint8_t> scratch;
      ChunkCipher cipher(*key_, checkpoint_id_);
      const ChunkId id{record_.file, record_.index, slice.name, slice.first_chunk + k};
      std::span<const std::uint8_t> sealed(stored, ChunkCipher::sealed_size(plain));
      if (from == chunk_begin && to == chunk_begin + plain) {
        cipher.open(id, sealed, std::span<std::uint8_t>(destination, plain));  // straight into place
      } else {
        scratch.resize(plain);
        cipher.open(id, sealed, scratch);
        std::memcpy(destination, scratch.data() + (from - chunk_begin), to - from);
        std::fill(scratch.begin(), scratch.end(), 0);
      }
    });
  } catch (...) {
    std::fill(out.begin(), out.end(), 0);
    throw;
  }
}

void ShardReader::verify_all_chunks(const ByteProgress& opened) const {
  std::vector<std::uint8_t> sink;
  for (const SliceRecord& slice : record_.slices) {
    const std::size_t element = dtype_size(slice.dtype);
    // A slice at a time, in pieces of at most 64 chunks, so memory stays bounded.
    const std::int64_t per_piece = static_cast<std::int64_t>(std::max<std::uint64_t>(1, 64 * chunk_bytes_ / element));
    for (std::int64_t first = 0; first < slice.numel; first += per_piece) {
      const std::int64_t count = std::min(per_piece, slice.numel - first);
      sink.resize(static_cast<std::size_t>(count) * element);
      read(slice, first, count, sink);
      if (opened) opened(sink.size());
    }
  }
  std::fill(sink.begin(), sink.end(), 0);
}

}  // namespace albion::checkpoint
