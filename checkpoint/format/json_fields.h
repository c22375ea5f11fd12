// File: checkpoint/format/json_fields.h
// Typed, bounds-checked reading of an untrusted JSON document (a checkpoint manifest, a dataset's
// dataset.json): every failure is an IntegrityError naming the document and the field, never
// nlohmann's own exception and never an out-of-range conversion.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace albion::checkpoint {

// The whole of the JSON document at `path` (a manifest lists every shard: 256 MiB would already be
// millions of them). IntegrityError "PATH: implausibly large (N bytes)" or "PATH: cannot be read";
// the caller checks that it exists, as only it knows what a missing file means.
std::string read_json_document(const std::filesystem::path& path);

// `text` parsed; IntegrityError "WHAT: not valid JSON" if it is not (numbers too large included).
nlohmann::json parse_untrusted_json(std::string_view text, const std::string& what);

class JsonFields {
 public:
  // IntegrityError unless `object` is a JSON object. `object` must outlive this view of it.
  JsonFields(const nlohmann::json& object, std::string what);

  [[noreturn]] void fail(const std::string& key, const std::string& why) const;

  bool has(const std::string& key) const { return object_.contains(key); }
  const nlohmann::json& at(const std::string& key) const;
  std::string string(const std::string& key) const;
  bool boolean(const std::string& key) const;
  double number(const std::string& key) const;  // any finite JSON number
  std::uint64_t unsigned_integer(const std::string& key) const;
  std::int64_t integer(const std::string& key) const;
  const nlohmann::json& array(const std::string& key) const;
  std::vector<std::int64_t> integers(const std::string& key) const;
  std::vector<std::uint8_t> hex_bytes(const std::string& key) const;
  // A string of exactly `characters` hex digits (an id, a SHA-256), kept as text.
  std::string hex_string(const std::string& key, std::size_t characters) const;
  // The object at `key`, read the same way; its failures name "WHAT: KEY".
  JsonFields object(const std::string& key) const;

  const std::string& what() const { return what_; }
  const nlohmann::json& value() const { return object_; }

 private:
  const nlohmann::json& object_;
  std::string what_;
};

}  // namespace albion::checkpoint
