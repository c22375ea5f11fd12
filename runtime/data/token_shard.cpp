// File: runtime/data/token_shard.cpp
#include "runtime/data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "runtime/data/hdf5_handle.h"

namespace albion::data {
namespace {

constexpr const char* kFormat = "albion-token-shard";
constexpr std::int64_t kFormatVersion = 1;

hid_t file_type(TokenWidth width) {
  return width == TokenWidth::kUint16 ? H5T_STD_U16LE : H5T_STD_U32LE;
}

void write_string_attribute(hid_t object, const char* name, const std::string& value,
                            const std::string& path) {
  H5Handle type(ALBION_H5_CHECK(H5Tcopy(H5T_C_S1), SystemError, path), H5Tclose);
  ALBION_H5_CHECK(H5Tset_size(type.get(), std::max<std::size_t>(value.size(), 1)), SystemError, path);
  H5Handle space(ALBION_H5_CHECK(H5Screate(H5S_SCALAR), SystemError, path), H5Sclose);
  H5Handle attribute(ALBION_H5_CHECK(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT,
                                                H5P_DEFAULT),
                                     SystemError, path),
                     H5Aclose);
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  ALBION_H5_CHECK(H5Awrite(attribute.get(), type.get(), padded.data()), SystemError, path);
}

void write_integer_attribute(hid_t object, const char* name, std::int64_t value,
                             const std::string& path) {
  H5Handle space(ALBION_H5_CHECK(H5Screate(H5S_SCALAR), SystemError, path), H5Sclose);
  H5Handle attribute(ALBION_H5_CHECK(H5Acreate2(object, name, H5T_STD_I64LE, space.get(),
                                                H5P_DEFAULT, H5P_DEFAULT),
                                     SystemError, path),
                     H5Aclose);
  ALBION_H5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value), SystemError, path);
}

std::string read_string_attribute(hid_t object, const char* name, const std::string& path) {
  ALBION_CHECK_AS(IntegrityError, H5Aexists(object, name) > 0, path, ": attribute '", name,
                  "' is missing");
  H5Handle attribute(ALBION_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), IntegrityError, path),
                     H5Aclose);
  H5Handle type(ALBION_H5_CHECK(H5Aget_type(attribute.get()), IntegrityError, path), H5Tclose);
  ALBION_CHECK_AS(IntegrityError, H5Tget_class(type.get()) == H5T_STRING &&
                                      H5Tis_variable_str(type.get()) == 0,
                  path, ": attribute '", name, "' is not a fixed-length string");
  std::size_t size = H5Tget_size(type.get());
  ALBION_CHECK_AS(IntegrityError, size > 0 && size < (64u << 20), path, ": attribute '", name,
                  "' has an implausible size");
  std::string value(size, '\0');
  ALBION_H5_CHECK(H5Aread(attribute.get(), type.get(), value.data()), IntegrityError, path);
  value.resize(std::strlen(value.c_str()));
  return value;
}

std::int64_t read_integer_attribute(hid_t object, const char* name, const std::string& path) {
  ALBION_CHECK_AS(IntegrityError, H5Aexists(object, name) > 0, path, ": attribute '", name,
                  "' is missing");
  H5Handle attribute(ALBION_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), IntegrityError, path),
                     H5Aclose);
  std::int64_t value = 0;
  ALBION_H5_CHECK(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value), IntegrityError, path);
  return value;
}

// A 1-D contiguous dataset, so its bytes sit at one file offset readers can map.
void write_vector(hid_t file, const char* name, hid_t stored_type, hid_t memory_type,
                  const void* data, std::uint64_t count, const std::string& path) {
  hsize_t dims[1] = {count};
  H5Handle space(ALBION_H5_CHECK(H5Screate_simple(1, dims, nullptr), SystemError, path), H5Sclose);
  H5Handle properties(ALBION_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), SystemError, path), H5Pclose);
  ALBION_H5_CHECK(H5Pset_layout(properties.get(), H5D_CONTIGUOUS), SystemError, path);
  ALBION_H5_CHECK(H5Pset_alloc_time(properties.get(), H5D_ALLOC_TIME_EARLY), SystemError, path);
  H5Handle dataset(ALBION_H5_CHECK(H5Dcreate2(file, name, stored_type, space.get(), H5P_DEFAULT,
                                              properties.get(), H5P_DEFAULT),
                                   SystemError, path),
                   H5Dclose);
  if (count > 0) {
    ALBION_H5_CHECK(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                    SystemError, path);
  }
}

struct MappedDataset {
  std::uint64_t count = 0;
  haddr_t offset = HADDR_UNDEF;
};

// Opens a 1-D dataset, checks its stored type and layout, returns its length and file offset.
MappedDataset locate(hid_t file, const char* name, hid_t expected_type, const std::string& path) {
  ALBION_CHECK_AS(IntegrityError, H5Lexists(file, name, H5P_DEFAULT) > 0, path, ": dataset '",
                  name, "' is missing");
  H5Handle dataset(ALBION_H5_CHECK(H5Dopen2(file, name, H5P_DEFAULT), IntegrityError, path),
                   H5Dclose);
  H5Handle type(ALBION_H5_CHECK(H5Dget_type(dataset.get()), IntegrityError, path), H5Tclose);
  ALBION_CHECK_AS(IntegrityError, H5Tequal(type.get(), expected_type) > 0, path, ": dataset '",
                  name, "' has an unexpected element type");
  H5Handle space(ALBION_H5_CHECK(H5Dget_space(dataset.get()), IntegrityError, path), H5Sclose);
  ALBION_CHECK_AS(IntegrityError, H5Sget_simple_extent_ndims(space.get()) == 1, path,
                  ": dataset '", name, "' is not one-dimensional");
  hsize_t dims[1] = {0};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  H5Handle properties(ALBION_H5_CHECK(H5Dget_create_plist(dataset.get()), IntegrityError, path),
                      H5Pclose);
  ALBION_CHECK_AS(IntegrityError, H5Pget_layout(properties.get()) == H5D_CONTIGUOUS &&
                                      H5Pget_nfilters(properties.get()) == 0,
                  path, ": dataset '", name, "' is not stored contiguously without filters");
  MappedDataset located;
  located.count = dims[0];
  located.offset = H5Dget_offset(dataset.get());
  ALBION_CHECK_AS(IntegrityError, located.count == 0 || located.offset != HADDR_UNDEF, path,
                  ": dataset '", name, "' has no storage");
  return located;
}

}  // namespace

const char* token_width_name(TokenWidth width) {
  return width == TokenWidth::kUint16 ? "uint16" : "uint32";
}

TokenWidth token_width_for_vocab(std::uint64_t vocab_size) {
  return vocab_size <= 65536 ? TokenWidth::kUint16 : TokenWidth::kUint32;
}

void silence_hdf5_errors() {
  static const bool silenced = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)silenced;
}

void write_token_shard(const std::string& path, TokenWidth width,
                       std::span<const std::uint32_t> tokens,
                       std::span<const std::uint64_t> doc_offsets,
                       std::span<const std::uint8_t> loss_mask, const ShardAttributes& attributes) {
  silence_hdf5_errors();
  ALBION_CHECK(!doc_offsets.empty() && doc_offsets.back() == tokens.size(),
               "shard ", path, ": document offsets do not cover the tokens");
  ALBION_CHECK(loss_mask.empty() || loss_mask.size() == tokens.size(), "shard ", path,
               ": loss mask length differs from token count");
  // Every allocation 8-byte aligned, so readers can map uint16/uint32/uint64 arrays in place.
  H5Handle access(ALBION_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), SystemError, path), H5Pclose);
  ALBION_H5_CHECK(H5Pset_alignment(access.get(), 1, 8), SystemError, path);
  H5Handle file(ALBION_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, access.get()),
                                UsageError, path),
                H5Fclose);
  if (width == TokenWidth::kUint16) {
    std::vector<std::uint16_t> narrow(tokens.begin(), tokens.end());
    write_vector(file.get(), "tokens", H5T_STD_U16LE, H5T_NATIVE_UINT16, narrow.data(),
                 narrow.size(), path);
  } else {
    write_vector(file.get(), "tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, tokens.data(),
                 tokens.size(), path);
  }
  write_vector(file.get(), "doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, doc_offsets.data(),
               doc_offsets.size(), path);
  if (!loss_mask.empty()) {
    write_vector(file.get(), "loss_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, loss_mask.data(),
                 loss_mask.size(), path);
  }
  hid_t root = file.get();
  write_string_attribute(root, "format", kFormat, path);
  write_integer_attribute(root, "format_version", kFormatVersion, path);
  write_string_attribute(root, "split", attributes.split, path);
  write_string_attribute(root, "tokenizer_hash", attributes.tokenizer_hash, path);
  write_integer_attribute(root, "vocab_size", static_cast<std::int64_t>(attributes.vocab_size), path);
  write_integer_attribute(root, "token_count", static_cast<std::int64_t>(tokens.size()), path);
  write_integer_attribute(root, "document_count", static_cast<std::int64_t>(doc_offsets.size() - 1), path);
  write_string_attribute(root, "sources", attributes.sources_json, path);
  ALBION_H5_CHECK(H5Fflush(root, H5F_SCOPE_GLOBAL), SystemError, path);
}

TokenShard::TokenShard(const std::string& path, TokenWidth expected_width,
                       std::uint64_t vocab_size, std::uint64_t expected_tokens)
    : path_(path), width_(expected_width) {
  silence_hdf5_errors();
  ALBION_CHECK_AS(IntegrityError, H5Fis_hdf5(path.c_str()) > 0, path, ": not an HDF5 file");
  H5Handle file(ALBION_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT),
                                IntegrityError, path),
                H5Fclose);
  hid_t root = file.get();
  ALBION_CHECK_AS(IntegrityError, read_string_attribute(root, "format", path) == kFormat &&
                                      read_integer_attribute(root, "format_version", path) ==
                                          kFormatVersion,
                  path, ": not an albion token shard of format version ", kFormatVersion);
  attributes_.split = read_string_attribute(root, "split", path);
  attributes_.tokenizer_hash = read_string_attribute(root, "tokenizer_hash", path);
  attributes_.vocab_size = static_cast<std::uint64_t>(read_integer_attribute(root, "vocab_size", path));
  attributes_.sources_json = read_string_attribute(root, "sources", path);
  ALBION_CHECK_AS(IntegrityError, attributes_.vocab_size == vocab_size, path, ": vocab size ",
                  attributes_.vocab_size, " differs from the dataset's ", vocab_size);

  MappedDataset tokens = locate(root, "tokens", file_type(expected_width), path);
  token_count_ = tokens.count;
  ALBION_CHECK_AS(IntegrityError,
                  token_count_ == expected_tokens &&
                      static_cast<std::uint64_t>(read_integer_attribute(root, "token_count", path)) ==
                          token_count_,
                  path, ": holds ", token_count_, " tokens, the manifest says ", expected_tokens);

  // Document offsets are small: read them, then check they partition the tokens.
  MappedDataset offsets = locate(root, "doc_offsets", H5T_STD_U64LE, path);
  ALBION_CHECK_AS(IntegrityError, offsets.count >= 1, path, ": empty document offsets");
  doc_offsets_.resize(offsets.count);
  {
    H5Handle dataset(ALBION_H5_CHECK(H5Dopen2(root, "doc_offsets", H5P_DEFAULT), IntegrityError, path),
                     H5Dclose);
    ALBION_H5_CHECK(H5Dread(dataset.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                            doc_offsets_.data()),
                    IntegrityError, path);
  }
  ALBION_CHECK_AS(IntegrityError,
                  doc_offsets_.front() == 0 && doc_offsets_.back() == token_count_ &&
                      std::is_sorted(doc_offsets_.begin(), doc_offsets_.end()),
                  path, ": document offsets do not partition the tokens");

  const bool has_mask = H5Lexists(root, "loss_mask", H5P_DEFAULT) > 0;
  MappedDataset mask;
  if (has_mask) {
    mask = locate(root, "loss_mask", H5T_STD_U8LE, path);
    ALBION_CHECK_AS(IntegrityError, mask.count == token_count_, path,
                    ": loss mask length differs from token count");
  }
  file.reset();

  // Map the whole file once; datasets are views at their offsets, bounds-checked first.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ALBION_CHECK_AS(UsageError, fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat info {};
  fstat(fd, &info);
  mapping_size_ = static_cast<std::size_t>(info.st_size);
  const std::size_t token_bytes = token_count_ * (expected_width == TokenWidth::kUint16 ? 2 : 4);
  const bool tokens_fit = token_count_ == 0 || (tokens.offset + token_bytes <= mapping_size_ &&
                                                tokens.offset % 8 == 0);
  const bool mask_fit = !has_mask || token_count_ == 0 || mask.offset + token_count_ <= mapping_size_;
  if (!tokens_fit || !mask_fit || mapping_size_ == 0) {
    ::close(fd);
    throw IntegrityError(str_cat(path, ": datasets extend past the end of the file (truncated?)"));
  }
  mapping_ = mmap(nullptr, mapping_size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  ALBION_CHECK_AS(SystemError, mapping_ != MAP_FAILED, path, ": mmap failed: ", std::strerror(errno));
  madvise(mapping_, mapping_size_, MADV_RANDOM);
  const auto* base = static_cast<const std::uint8_t*>(mapping_);
  tokens_ = base + tokens.offset;
  if (has_mask) mask_ = base + mask.offset;

  // Every id must index the embedding table: an out-of-range id would read past it.
  std::uint32_t max_token = 0;
  if (expected_width == TokenWidth::kUint16) {
    const auto* t = static_cast<const std::uint16_t*>(tokens_);
    for (std::uint64_t i = 0; i < token_count_; ++i) max_token = std::max<std::uint32_t>(max_token, t[i]);
  } else {
    const auto* t = static_cast<const std::uint32_t*>(tokens_);
    for (std::uint64_t i = 0; i < token_count_; ++i) max_token = std::max(max_token, t[i]);
  }
  if (token_count_ > 0 && max_token >= vocab_size) {
    munmap(mapping_, mapping_size_);
    mapping_ = nullptr;
    throw IntegrityError(str_cat(path, ": token id ", max_token, " is outside the vocabulary of ",
                                 vocab_size));
  }
}

TokenShard::~TokenShard() {
  if (mapping_ != nullptr && mapping_ != MAP_FAILED) munmap(mapping_, mapping_size_);
}

void TokenShard::copy_tokens(std::uint64_t start, std::uint64_t count, std::int64_t* out) const {
  ALBION_CHECK(start + count <= token_count_, path_, ": token range [", start, ", ", start + count,
               ") past ", token_count_);
  if (width_ == TokenWidth::kUint16) {
    const auto* t = static_cast<const std::uint16_t*>(tokens_) + start;
    std::copy(t, t + count, out);
  } else {
    const auto* t = static_cast<const std::uint32_t*>(tokens_) + start;
    std::copy(t, t + count, out);
  }
}

void TokenShard::copy_loss_mask(std::uint64_t start, std::uint64_t count, std::uint8_t* out) const {
  ALBION_CHECK(mask_ != nullptr && start + count <= token_count_, path_, ": bad loss mask range");
  std::memcpy(out, mask_ + start, count);
}

}  // namespace albion::data
