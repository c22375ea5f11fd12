// File: runtime/data/token_shard.cpp
#include "runtime/data/token_shard.h"

#include <algorithm>
#include <cstring>

#include "checkpoint/io/hdf5_io.h"
#include "runtime/data/shard_format.h"
#include "runtime/data/sealed_token_shard.h"

namespace albion::data {

// The HDF5 helpers (checkpoint/io/hdf5_io.h), shared with checkpoint shards.
using namespace checkpoint;  // NOLINT(google-build-using-namespace)
namespace {

constexpr const char* kFormat = "albion-token-shard";
constexpr std::int64_t kFormatVersion = 1;

hid_t file_type(TokenWidth width) {
  return width == TokenWidth::kUint16 ? H5T_STD_U16LE : H5T_STD_U32LE;
}

}  // namespace

const char* token_width_name(TokenWidth width) {
  return width == TokenWidth::kUint16 ? "uint16" : "uint32";
}

TokenWidth token_width_for_vocab(std::uint64_t vocab_size) {
  return vocab_size <= 65536 ? TokenWidth::kUint16 : TokenWidth::kUint32;
}

void write_token_shard(const std::string& path, TokenWidth width,
                       std::span<const std::uint32_t> tokens,
                       std::span<const std::uint64_t> doc_offsets,
                       std::span<const std::uint8_t> loss_mask, const ShardAttributes& attributes,
                       const ShardSealing* sealing) {
  silence_hdf5_errors();
  ALBION_CHECK(!doc_offsets.empty() && doc_offsets.back() == tokens.size(),
               "shard ", path, ": document offsets do not cover the tokens");
  ALBION_CHECK(loss_mask.empty() || loss_mask.size() == tokens.size(), "shard ", path,
               ": loss mask length differs from token count");
  // Every allocation 8-byte aligned, so readers can map uint16/uint32/uint64 arrays in place.
  H5Handle access(ALBION_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS), SystemError, path), H5Pclose);
  ALBION_H5_CHECK(H5Pset_alignment(access.get(), 1, 8), SystemError, path);
  // No modification times on the root group: the same data must give byte-identical files.
  H5Handle creation(ALBION_H5_CHECK(H5Pcreate(H5P_FILE_CREATE), SystemError, path), H5Pclose);
  ALBION_H5_CHECK(H5Pset_obj_track_times(creation.get(), false), SystemError, path);
  H5Handle file(ALBION_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_EXCL, creation.get(), access.get()),
                                UsageError, path),
                H5Fclose);
  hid_t root = file.get();
  write_string_attribute(root, "format", kFormat, path);
  write_integer_attribute(root, "format_version", kFormatVersion, path);
  write_integer_attribute(root, "encrypted", sealing != nullptr ? 1 : 0, path);
  if (sealing != nullptr) {
    write_sealed_token_arrays(root, path, width, tokens, doc_offsets, loss_mask, *sealing);
  } else {
    if (width == TokenWidth::kUint16) {
      std::vector<std::uint16_t> narrow(tokens.begin(), tokens.end());
      write_contiguous_vector(root, "tokens", H5T_STD_U16LE, H5T_NATIVE_UINT16, narrow.data(),
                              narrow.size(), path);
    } else {
      write_contiguous_vector(root, "tokens", H5T_STD_U32LE, H5T_NATIVE_UINT32, tokens.data(),
                              tokens.size(), path);
    }
    write_contiguous_vector(root, "doc_offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64,
                            doc_offsets.data(), doc_offsets.size(), path);
    if (!loss_mask.empty()) {
      write_contiguous_vector(root, "loss_mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, loss_mask.data(),
                              loss_mask.size(), path);
    }
    write_string_attribute(root, "split", attributes.split, path);
    write_string_attribute(root, "tokenizer_hash", attributes.tokenizer_hash, path);
    write_integer_attribute(root, "vocab_size", static_cast<std::int64_t>(attributes.vocab_size), path);
    write_integer_attribute(root, "token_count", static_cast<std::int64_t>(tokens.size()), path);
    write_integer_attribute(root, "document_count", static_cast<std::int64_t>(doc_offsets.size() - 1), path);
    write_string_attribute(root, "sources", attributes.sources_json, path);
  }
  ALBION_H5_CHECK(H5Fflush(root, H5F_SCOPE_GLOBAL), SystemError, path);
}

void check_shard_format(hid_t root, bool encrypted, const std::string& path) {
  ALBION_CHECK_AS(IntegrityError, read_string_attribute(root, "format", path) == kFormat &&
                                      read_integer_attribute(root, "format_version", path) ==
                                          kFormatVersion,
                  path, ": not an albion token shard of format version ", kFormatVersion);
  ALBION_CHECK_AS(IntegrityError, read_integer_attribute(root, "encrypted", path) == (encrypted ? 1 : 0),
                  path, encrypted ? ": shard is not encrypted, but its dataset is"
                                  : ": shard is encrypted, but its dataset is not");
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
  check_shard_format(root, /*encrypted=*/false, path);
  attributes_.split = read_string_attribute(root, "split", path);
  attributes_.tokenizer_hash = read_string_attribute(root, "tokenizer_hash", path);
  attributes_.vocab_size = static_cast<std::uint64_t>(read_integer_attribute(root, "vocab_size", path));
  attributes_.sources_json = read_string_attribute(root, "sources", path);
  ALBION_CHECK_AS(IntegrityError, attributes_.vocab_size == vocab_size, path, ": vocab size ",
                  attributes_.vocab_size, " differs from the dataset's ", vocab_size);

  ContiguousDataset tokens = locate_contiguous(root, "tokens", file_type(expected_width), path);
  token_count_ = tokens.count;
  ALBION_CHECK_AS(IntegrityError,
                  token_count_ == expected_tokens &&
                      static_cast<std::uint64_t>(read_integer_attribute(root, "token_count", path)) ==
                          token_count_,
                  path, ": holds ", token_count_, " tokens, the manifest says ", expected_tokens);

  // Document offsets are small: read them, then check they partition the tokens.
  ContiguousDataset offsets = locate_contiguous(root, "doc_offsets", H5T_STD_U64LE, path);
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
  ContiguousDataset mask;
  if (has_mask) {
    mask = locate_contiguous(root, "loss_mask", H5T_STD_U8LE, path);
    ALBION_CHECK_AS(IntegrityError, mask.count == token_count_, path,
                    ": loss mask length differs from token count");
  }
  file.reset();

  // Map the whole file once; datasets are views at their offsets, bounds-checked first.
  mapping_ = std::make_unique<MappedFile>(path);
  const std::uint64_t bytes = token_count_ * token_bytes(expected_width);
  const bool tokens_fit = token_count_ == 0 || (mapping_->contains(tokens.offset, bytes) && tokens.offset % 8 == 0);
  const bool mask_fit = !has_mask || token_count_ == 0 || mapping_->contains(mask.offset, token_count_);
  ALBION_CHECK_AS(IntegrityError, tokens_fit && mask_fit, path,
                  ": datasets extend past the end of the file (truncated?)");
  tokens_ = mapping_->data() + tokens.offset;
  if (has_mask) mask_ = mapping_->data() + mask.offset;

  // Every id must index the embedding table: an out-of-range id would read past it.
  std::uint32_t max_token = 0;
  if (expected_width == TokenWidth::kUint16) {
    const auto* t = static_cast<const std::uint16_t*>(tokens_);
    for (std::uint64_t i = 0; i < token_count_; ++i) max_token = std::max<std::uint32_t>(max_token, t[i]);
  } else {
    const auto* t = static_cast<const std::uint32_t*>(tokens_);
    for (std::uint64_t i = 0; i < token_count_; ++i) max_token = std::max(max_token, t[i]);
  }
  ALBION_CHECK_AS(IntegrityError, token_count_ == 0 || max_token < vocab_size, path, ": token id ",
                  max_token, " is outside the vocabulary of ", vocab_size);
}

TokenShard::~TokenShard() = default;

void TokenShard::copy_tokens(std::uint64_t start, std::uint64_t count, std::int64_t* out) {
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

void TokenShard::copy_loss_mask(std::uint64_t start, std::uint64_t count, std::uint8_t* out) {
  ALBION_CHECK(mask_ != nullptr && start + count <= token_count_, path_, ": bad loss mask range");
  std::memcpy(out, mask_ + start, count);
}

}  // namespace albion::data
