// File: checkpoint/export/safetensors.cpp
// Writing and strictly parsing safetensors files. The header JSON goes through nlohmann_json,
// whose exceptions never leave this file: bad input becomes IntegrityError (reading) or
// UsageError (writing).
#include "checkpoint/export/safetensors.h"

#include <algorithm>
#include <array>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "checkpoint/io/atomic_file.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

constexpr const char* kMetadataKey = "__metadata__";
constexpr std::size_t kHeaderSizeBytes = 8;
constexpr std::size_t kHeaderAlignment = 8;

// The byte count of `shape` x `element_size`, or nullopt when it overflows 64 bits.
std::optional<std::uint64_t> checked_byte_count(const std::vector<std::int64_t>& shape, std::size_t element_size) {
  std::uint64_t count = element_size;
  for (const std::int64_t dim : shape) {
    if (dim < 0 || __builtin_mul_overflow(count, static_cast<std::uint64_t>(dim), &count)) return std::nullopt;
  }
  return count;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// ---- writing ----------------------------------------------------------------------------------

// Checks every tensor and returns them in buffer order: widest element first (so each tensor is
// aligned to its element size once the header is padded to 8), then by name.
std::vector<const SafetensorsTensor*> checked_layout(const std::filesystem::path& path,
                                                     const std::vector<SafetensorsTensor>& tensors) {
  std::set<std::string_view> names;
  std::vector<const SafetensorsTensor*> order;
  for (const SafetensorsTensor& t : tensors) {
    ALBION_CHECK_AS(UsageError, t.name != kMetadataKey, "'", path.string(), "': a tensor may not be named ",
                    kMetadataKey);
    ALBION_CHECK_AS(UsageError, names.insert(t.name).second, "'", path.string(), "': tensor '", t.name,
                    "' appears twice");
    const std::optional<std::size_t> size = safetensors_dtype_size(t.dtype);
    ALBION_CHECK_AS(UsageError, size.has_value(), "'", path.string(), "': tensor '", t.name,
                    "' has dtype '", t.dtype, "', which safetensors does not define");
    const std::optional<std::uint64_t> expected = checked_byte_count(t.shape, *size);
    ALBION_CHECK_AS(UsageError, expected.has_value(), "'", path.string(), "': tensor '", t.name,
                    "' has an invalid shape ", shape_text(t.shape));
    ALBION_CHECK_AS(UsageError, *expected == t.bytes.size(), "'", path.string(), "': tensor '", t.name,
                    "' of shape ", shape_text(t.shape), " and dtype ", t.dtype, " needs ", *expected,
                    " bytes, got ", t.bytes.size());
    order.push_back(&t);
  }
  std::sort(order.begin(), order.end(), [](const SafetensorsTensor* a, const SafetensorsTensor* b) {
    const std::size_t size_a = *safetensors_dtype_size(a->dtype), size_b = *safetensors_dtype_size(b->dtype);
    return size_a != size_b ? size_a > size_b : a->name < b->name;
  });
  return order;
}

// The 8-byte size followed by the JSON header, padded with spaces to a multiple of 8.
std::string header_bytes(const std::filesystem::path& path, const std::vector<const SafetensorsTensor*>& order,
                         const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const SafetensorsTensor* t : order) {
    const std::uint64_t end = offset + t->bytes.size();
    header[t->name] = {{"dtype", t->dtype}, {"shape", t->shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string json;
  try {
    json = header.dump();
  } catch (const nlohmann::json::exception&) {
    // dump() rejects strings that are not UTF-8.
    throw UsageError(str_cat("'", path.string(), "': a tensor name or metadata entry is not valid UTF-8"));
  }
  json.append((kHeaderAlignment - json.size() % kHeaderAlignment) % kHeaderAlignment, ' ');
  std::string out(kHeaderSizeBytes, '\0');
  const std::uint64_t size = json.size();
  for (std::size_t i = 0; i < kHeaderSizeBytes; ++i) out[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  return out + json;
}

// ---- parsing ----------------------------------------------------------------------------------

[[noreturn]] void corrupt(const std::string& what, const std::string& why) {
  throw IntegrityError(str_cat("'", what, "' is not a valid safetensors file: ", why));
}

std::uint64_t unsigned_number(const nlohmann::json& value, const std::string& what, const std::string& context) {
  if (!value.is_number_unsigned()) corrupt(what, str_cat(context, " is not a non-negative integer"));
  return value.get<std::uint64_t>();
}

SafetensorsIndex::Entry parse_entry(const std::string& name, const nlohmann::json& info, const std::string& what) {
  const std::string context = str_cat("tensor '", name, "'");
  if (!info.is_object()) corrupt(what, str_cat(context, " is not a JSON object"));
  if (info.size() != 3 || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets")) {
    corrupt(what, str_cat(context, " must have exactly the keys dtype, shape, data_offsets"));
  }
  SafetensorsIndex::Entry entry;
  entry.name = name;
  const nlohmann::json& dtype = info.at("dtype");
  if (!dtype.is_string()) corrupt(what, str_cat(context, ": dtype is not a string"));
  entry.dtype = dtype.get<std::string>();
  const std::optional<std::size_t> element_size = safetensors_dtype_size(entry.dtype);
  if (!element_size) corrupt(what, str_cat(context, ": unknown dtype"));

  const nlohmann::json& shape = info.at("shape");
  if (!shape.is_array()) corrupt(what, str_cat(context, ": shape is not an array"));
  for (const nlohmann::json& dim : shape) {
    const std::uint64_t value = unsigned_number(dim, what, str_cat(context, ": a dimension"));
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      corrupt(what, str_cat(context, ": a dimension is too large"));
    }
    entry.shape.push_back(static_cast<std::int64_t>(value));
  }

  const nlohmann::json& offsets = info.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) corrupt(what, str_cat(context, ": data_offsets is not [begin, end]"));
  entry.begin = unsigned_number(offsets[0], what, str_cat(context, ": data_offsets[0]"));
  entry.end = unsigned_number(offsets[1], what, str_cat(context, ": data_offsets[1]"));
  if (entry.end < entry.begin) corrupt(what, str_cat(context, ": data_offsets end before begin"));
  const std::optional<std::uint64_t> bytes = checked_byte_count(entry.shape, *element_size);
  if (!bytes || *bytes != entry.end - entry.begin) {
    corrupt(what, str_cat(context, ": ", entry.end - entry.begin, " bytes do not hold shape ",
                          shape_text(entry.shape), " of ", entry.dtype));
  }
  return entry;
}

std::map<std::string, std::string> parse_metadata(const nlohmann::json& value, const std::string& what) {
  if (!value.is_object()) corrupt(what, str_cat(kMetadataKey, " is not a JSON object"));
  std::map<std::string, std::string> metadata;
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) corrupt(what, str_cat(kMetadataKey, " entry '", key, "' is not a string"));
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

// The header JSON, refusing duplicate keys at any depth (nlohmann would keep the last silently;
// two readers could then disagree about which tensor a name means).
nlohmann::json parse_json(std::string_view text, const std::string& what) {
  std::vector<std::set<std::string>> open_objects;
  const auto reject_duplicates = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) open_objects.emplace_back();
    if (event == Event::object_end && !open_objects.empty()) open_objects.pop_back();
    if (event == Event::key && !open_objects.empty() &&
        !open_objects.back().insert(parsed.get<std::string>()).second) {
      corrupt(what, str_cat("duplicate key '", parsed.get<std::string>(), "' in the header"));
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.begin(), text.end(), reject_duplicates);
  } catch (const nlohmann::json::parse_error& e) {
    // Not e.what(): it quotes the offending bytes, which may be anything.
    corrupt(what, str_cat("the header is not valid UTF-8 JSON (at header byte ", e.byte, ")"));
  } catch (const nlohmann::json::exception&) {
    corrupt(what, "the header is not valid UTF-8 JSON");
  }
}

}  // namespace

std::optional<std::size_t> safetensors_dtype_size(const std::string& dtype) {
  static const std::map<std::string, std::size_t, std::less<>> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
      {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},     {"C64", 8},
  };
  const auto it = kSizes.find(dtype);
  if (it == kSizes.end()) return std::nullopt;
  return it->second;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<SafetensorsTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  ALBION_CHECK_AS(UsageError, !path.empty() && path.has_filename(), "safetensors path '", path.string(),
                  "' does not name a file");
  const std::vector<const SafetensorsTensor*> order = checked_layout(path, tensors);
  const std::string header = header_bytes(path, order, metadata);
  // Written from the tensors' own memory, owner-only from the first byte (the weights may come
  // from an encrypted checkpoint), and never over a file that appeared meanwhile.
  std::vector<std::span<const std::uint8_t>> pieces = {
      {reinterpret_cast<const std::uint8_t*>(header.data()), header.size()}};
  for (const SafetensorsTensor* t : order) pieces.push_back(t->bytes);
  write_file_atomically(path, pieces, ExistingFile::kRefuse);
}

SafetensorsIndex parse_safetensors_header(std::span<const std::uint8_t> file_bytes, const std::string& what) {
  if (file_bytes.size() < kHeaderSizeBytes) {
    corrupt(what, str_cat("it has ", file_bytes.size(), " bytes, fewer than the 8-byte header size"));
  }
  std::uint64_t header_size = 0;
  for (std::size_t i = 0; i < kHeaderSizeBytes; ++i) header_size |= std::uint64_t{file_bytes[i]} << (8 * i);
  if (header_size > kMaxSafetensorsHeaderBytes) {
    corrupt(what, str_cat("header size ", header_size, " exceeds the limit of ", kMaxSafetensorsHeaderBytes));
  }
  if (header_size > file_bytes.size() - kHeaderSizeBytes) {
    corrupt(what, str_cat("header size ", header_size, " runs past the end of the file (",
                          file_bytes.size(), " bytes)"));
  }
  std::string_view text(reinterpret_cast<const char*>(file_bytes.data()) + kHeaderSizeBytes, header_size);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.empty() || text.front() != '{') corrupt(what, "the header does not start with '{'");

  const nlohmann::json header = parse_json(text, what);
  SafetensorsIndex index;
  index.data_start = kHeaderSizeBytes + header_size;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      index.metadata = parse_metadata(value, what);
    } else {
      index.entries.push_back(parse_entry(key, value, what));
    }
  }

  std::stable_sort(index.entries.begin(), index.entries.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const std::uint64_t buffer_size = file_bytes.size() - index.data_start;
  std::uint64_t cursor = 0;
  for (const SafetensorsIndex::Entry& entry : index.entries) {
    if (entry.begin != cursor) {
      corrupt(what, str_cat("tensor '", entry.name, "' starts at buffer byte ", entry.begin, ", expected ", cursor,
                            " (tensors must tile the buffer without gaps or overlaps)"));
    }
    cursor = entry.end;
  }
  if (cursor != buffer_size) {
    corrupt(what, str_cat("the tensors cover ", cursor, " bytes of a ", buffer_size, "-byte buffer"));
  }
  return index;
}

}  // namespace albion::checkpoint
