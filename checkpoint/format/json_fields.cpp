// File: checkpoint/format/json_fields.cpp
#include "checkpoint/format/json_fields.h"

#include <fstream>
#include <iterator>
#include <limits>

#include "checkpoint/crypto/hex.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {

using Json = nlohmann::json;

std::string read_json_document(const std::filesystem::path& path) {
  constexpr std::uintmax_t kMaxBytes = 256u << 20;
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(path, error);
  ALBION_CHECK_AS(IntegrityError, !error, path.string(), ": cannot be read");
  ALBION_CHECK_AS(IntegrityError, size <= kMaxBytes, path.string(), ": implausibly large (", size, " bytes)");
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ALBION_CHECK_AS(IntegrityError, in.good() || in.eof(), path.string(), ": cannot be read");
  return text;
}

Json parse_untrusted_json(std::string_view text, const std::string& what) {
  Json value = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  ALBION_CHECK_AS(IntegrityError, !value.is_discarded(), what, ": not valid JSON");
  return value;
}

JsonFields::JsonFields(const Json& object, std::string what) : object_(object), what_(std::move(what)) {
  if (!object_.is_object()) fail("", "expected an object");
}

void JsonFields::fail(const std::string& key, const std::string& why) const {
  throw IntegrityError(str_cat(what_, key.empty() ? "" : ": field '" + key + "'", ": ", why));
}

const Json& JsonFields::at(const std::string& key) const {
  auto it = object_.find(key);
  if (it == object_.end()) fail(key, "is missing");
  return *it;
}

std::string JsonFields::string(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_string()) fail(key, "expected a string");
  return v.get<std::string>();
}

bool JsonFields::boolean(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_boolean()) fail(key, "expected true or false");
  return v.get<bool>();
}

double JsonFields::number(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_number()) fail(key, "expected a number");
  return v.get<double>();  // the parser accepts finite numbers only
}

std::uint64_t JsonFields::unsigned_integer(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_number_unsigned()) fail(key, "expected a non-negative integer");
  return v.get<std::uint64_t>();
}

namespace {

bool fits_int64(const Json& v) {
  return !v.is_number_unsigned() ||
         v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
}

}  // namespace

std::int64_t JsonFields::integer(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_number_integer()) fail(key, "expected an integer");
  if (!fits_int64(v)) fail(key, "too large");
  return v.get<std::int64_t>();
}

const Json& JsonFields::array(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_array()) fail(key, "expected an array");
  return v;
}

std::vector<std::int64_t> JsonFields::integers(const std::string& key) const {
  std::vector<std::int64_t> out;
  for (const Json& v : array(key)) {
    if (!v.is_number_integer()) fail(key, "expected integers");
    if (!fits_int64(v)) fail(key, "too large");
    out.push_back(v.get<std::int64_t>());
  }
  return out;
}

std::vector<std::uint8_t> JsonFields::hex_bytes(const std::string& key) const {
  std::optional<std::vector<std::uint8_t>> bytes = bytes_from_hex(string(key));
  if (!bytes) fail(key, "expected hex");
  return *bytes;
}

std::string JsonFields::hex_string(const std::string& key, std::size_t characters) const {
  std::string text = string(key);
  if (text.size() != characters || !bytes_from_hex(text)) fail(key, str_cat("expected ", characters, " hex characters"));
  return text;
}

JsonFields JsonFields::object(const std::string& key) const {
  const Json& v = at(key);
  if (!v.is_object()) fail(key, "expected an object");
  return JsonFields(v, what_ + ": " + key);
}

}  // namespace albion::checkpoint
