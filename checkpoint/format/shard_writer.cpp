// File: checkpoint/format/shard_writer.cpp
#include "checkpoint/format/shard_writer.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "checkpoint/crypto/chunk_cipher.h"
#include "checkpoint/crypto/sha256.h"
#include "checkpoint/io/hdf5_io.h"
#include "checkpoint/io/unique_fd.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

struct ChunkJob {
  std::string_view tensor_name;
  std::uint64_t chunk = 0;                // file-wide chunk number
  std::span<const std::uint8_t> plain;
  std::uint64_t position = 0;             // inside the data region
};

std::uint64_t element_count(const std::vector<std::int64_t>& shape) {
  std::uint64_t count = 1;
  for (std::int64_t dim : shape) {
    ALBION_CHECK(dim >= 0, "checkpoint: negative dimension in a tensor shape");
    ALBION_CHECK(dim == 0 || count <= UINT64_MAX / static_cast<std::uint64_t>(dim), "checkpoint: shape overflows");
    count *= static_cast<std::uint64_t>(dim);
  }
  return count;
}

// Creates the HDF5 container with its "data" dataset allocated but not written, and returns the
// dataset's file offset: the chunks are then written there with pwrite, without HDF5 copying them.
std::uint64_t create_container(const std::filesystem::path& path, std::uint32_t index, std::uint64_t data_bytes) {
  silence_hdf5_errors();
  const std::string where = path.string();
  ALBION_CHECK_AS(SystemError, !std::filesystem::exists(path), where, ": already exists");
  H5Handle file(ALBION_H5_CHECK(H5Fcreate(where.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, H5P_DEFAULT), SystemError, where),
                H5Fclose);
  write_string_attribute(file.get(), "format", kShardFormat, where);
  write_integer_attribute(file.get(), "index", index, where);
  H5Handle dataset = create_contiguous_dataset(file.get(), "data", H5T_STD_U8LE, data_bytes, where);
  std::uint64_t offset = 0;
  if (data_bytes > 0) {
    const haddr_t address = H5Dget_offset(dataset.get());
    ALBION_CHECK_AS(SystemError, address != HADDR_UNDEF, where, ": HDF5 allocated no storage for the data");
    offset = address;
  }
  dataset.reset();
  const hid_t id = file.release();  // closed here, so a failed final flush is reported
  ALBION_H5_CHECK(H5Fclose(id), SystemError, where);
  return offset;
}

void hash_file_range(int fd, std::uint64_t begin, std::uint64_t end, Sha256Stream& digest,
                     const std::filesystem::path& path) {
  std::vector<std::uint8_t> buffer(1u << 20);
  while (begin < end) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), end - begin));
    pread_all(fd, buffer.data(), n, begin, path);
    digest.update(std::span<const std::uint8_t>(buffer.data(), n));
    begin += n;
  }
}

// Seals jobs on `threads` workers into a ring of buffers; this thread writes them in order.
void write_sealed(int fd, std::uint64_t data_offset, const std::vector<ChunkJob>& jobs, const DataKey& key,
                  const std::string& checkpoint_id, const std::string& file_name, std::uint32_t index,
                  std::uint64_t chunk_bytes, int threads, Sha256Stream& digest, const std::filesystem::path& path) {
  const std::size_t n = jobs.size();
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(threads, n));
  const std::size_t slots = 2 * workers;  // each worker one chunk ahead of the writer
  std::vector<std::vector<std::uint8_t>> buffers(slots, std::vector<std::uint8_t>(chunk_bytes + kChunkTagBytes));
  std::vector<std::int64_t> ready(slots, -1);
  std::mutex mutex;
  std::condition_variable changed;
  std::size_t written = 0;
  bool abort = false;
  std::exception_ptr failure;
  std::atomic<std::size_t> next{0};

  auto worker = [&] {
    try {
      ChunkCipher cipher(key, checkpoint_id);
      for (std::size_t j = next++; j < n; j = next++) {
        {
          std::unique_lock lock(mutex);
          changed.wait(lock, [&] { return abort || j < written + slots; });
          if (abort) return;
        }
        const ChunkJob& job = jobs[j];
        std::span<std::uint8_t> out(buffers[j % slots].data(), ChunkCipher::sealed_size(job.plain.size()));
        cipher.seal({file_name, index, job.tensor_name, job.chunk}, job.plain, out);
        {
          std::lock_guard lock(mutex);
          ready[j % slots] = static_cast<std::int64_t>(j);
        }
        changed.notify_all();
      }
    } catch (...) {
      std::lock_guard lock(mutex);
      if (!failure) failure = std::current_exception();
      abort = true;
      changed.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < workers; ++t) pool.emplace_back(worker);
  try {
    for (std::size_t j = 0; j < n; ++j) {
      {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return abort || ready[j % slots] == static_cast<std::int64_t>(j); });
        if (abort) break;
      }
      std::span<const std::uint8_t> sealed(buffers[j % slots].data(),
                                           ChunkCipher::sealed_size(jobs[j].plain.size()));
      pwrite_all(fd, sealed.data(), sealed.size(), data_offset + jobs[j].position, path);
      digest.update(sealed);
      {
        std::lock_guard lock(mutex);
        written = j + 1;
      }
      changed.notify_all();
    }
  } catch (...) {
    std::lock_guard lock(mutex);
    if (!failure) failure = std::current_exception();
    abort = true;
    changed.notify_all();
  }
  for (std::thread& thread : pool) thread.join();
  for (auto& buffer : buffers) std::fill(buffer.begin(), buffer.end(), 0);
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

ShardRecord write_shard(const std::filesystem::path& path, std::uint32_t index,
                        const std::vector<TensorSlice>& slices, const DataKey* key,
                        const std::string& checkpoint_id, const ShardWriteOptions& options) {
  ALBION_CHECK(options.chunk_bytes > 0, "checkpoint: chunk size must be positive");
  const std::uint64_t tag = key != nullptr ? kChunkTagBytes : 0;
  ShardRecord record;
  record.file = path.filename().string();
  record.index = index;

  // Plan every chunk first: one thread numbers them (Note [Nonce uniqueness]).
  std::vector<ChunkJob> jobs;
  std::uint64_t chunk = 0;
  std::uint64_t position = 0;
  for (const TensorSlice& slice : slices) {
    const std::size_t element = dtype_size(slice.dtype);
    ALBION_CHECK(element > 0, "checkpoint: tensor ", slice.name, " has unknown dtype '", slice.dtype, "'");
    ALBION_CHECK(slice.offset >= 0 && slice.numel >= 0 &&
                     static_cast<std::uint64_t>(slice.offset) + static_cast<std::uint64_t>(slice.numel) <=
                         element_count(slice.global_shape),
                 "checkpoint: tensor ", slice.name, ": slice outside its global shape");
    ALBION_CHECK(slice.bytes.size() == static_cast<std::uint64_t>(slice.numel) * element, "checkpoint: tensor ",
                 slice.name, ": ", slice.bytes.size(), " bytes for ", slice.numel, " elements of ", slice.dtype);
    SliceRecord out{slice.name, slice.dtype, slice.global_shape, slice.offset, slice.numel, chunk, 0, position,
                    slice.transposed};
    const std::uint64_t bytes = slice.bytes.size();
    for (std::uint64_t k = 0; k * options.chunk_bytes < bytes; ++k) {
      const std::uint64_t plain = chunk_plain_bytes(bytes, options.chunk_bytes, k);
      jobs.push_back({slice.name, chunk++, slice.bytes.subspan(k * options.chunk_bytes, plain), position});
      position += plain + tag;
      ++out.chunk_count;
    }
    record.slices.push_back(std::move(out));
  }
  record.data_bytes = position;
  record.data_offset = create_container(path, index, record.data_bytes);

  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  ALBION_CHECK_AS(SystemError, fd.valid(), path.string(), ": cannot reopen: ", errno_text(errno));
  Sha256Stream digest;
  hash_file_range(fd.get(), 0, record.data_offset, digest, path);
  if (key != nullptr) {
    write_sealed(fd.get(), record.data_offset, jobs, *key, checkpoint_id, record.file, index, options.chunk_bytes,
                 options.threads, digest, path);
  } else {
    for (const ChunkJob& job : jobs) {
      pwrite_all(fd.get(), job.plain.data(), job.plain.size(), record.data_offset + job.position, path);
      digest.update(job.plain);
    }
  }
  struct stat info {};
  ALBION_CHECK_AS(SystemError, ::fstat(fd.get(), &info) == 0, path.string(), ": fstat failed: ", errno_text(errno));
  record.file_bytes = static_cast<std::uint64_t>(info.st_size);
  hash_file_range(fd.get(), record.data_offset + record.data_bytes, record.file_bytes, digest, path);
  fsync_or_throw(fd.get(), path);
  fd.close(path);
  record.sha256 = digest.finish_hex();
  return record;
}

}  // namespace albion::checkpoint
