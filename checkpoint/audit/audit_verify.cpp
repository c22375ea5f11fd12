// File: checkpoint/audit/audit_verify.cpp
#include "checkpoint/audit/audit_verify.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string_view>

#include "checkpoint/audit/audit_record.h"
#include "checkpoint/crypto/sha256.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

constexpr std::array<std::string_view, 8> kStringFields = {"prev", "time", "host", "user",
                                                           "action", "path", "key_id", "outcome"};

bool is_sha256_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Why `line` is not a well-formed record, or nullopt. Fills `time` from it.
std::optional<std::string> check_record(std::string_view line, std::string& time, std::string& prev) {
  nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded()) return "malformed JSON";
  if (!record.is_object()) return "not a JSON object";
  for (std::string_view field : kStringFields) {
    auto it = record.find(field);
    if (it == record.end()) return str_cat("field '", field, "' is missing");
    if (!it->is_string()) return str_cat("field '", field, "' is not a string");
  }
  if (!record.contains("rank") || !record["rank"].is_number_integer()) {
    return "field 'rank' is missing or not an integer";
  }
  for (auto it = record.begin(); it != record.end(); ++it) {
    const bool known = it.key() == "rank" || it.key() == "detail" ||
                       std::find(kStringFields.begin(), kStringFields.end(), it.key()) != kStringFields.end();
    if (!known) return str_cat("unexpected field '", it.key(), "'");
  }
  if (record.contains("detail") && !record["detail"].is_string()) return "field 'detail' is not a string";
  prev = record["prev"].get<std::string>();
  if (!is_sha256_hex(prev)) return "field 'prev' is not a SHA-256 in hex";
  time = record["time"].get<std::string>();
  if (!is_utc_timestamp(time)) return str_cat("field 'time' is not a UTC timestamp: '", time, "'");
  if (!parse_audit_action(record["action"].get<std::string>())) {
    return str_cat("unknown action '", record["action"].get<std::string>(), "'");
  }
  if (!parse_audit_outcome(record["outcome"].get<std::string>())) {
    return str_cat("unknown outcome '", record["outcome"].get<std::string>(), "'");
  }
  return std::nullopt;
}

}  // namespace

AuditVerification verify_audit_log(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  ALBION_CHECK_AS(UsageError, in.is_open(), "cannot open audit log '", path.string(), "'");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ALBION_CHECK_AS(UsageError, !in.bad(), "cannot read audit log '", path.string(), "'");

  AuditVerification result;
  result.head = std::string(kAuditGenesis);
  std::size_t line_number = 0;
  for (std::size_t begin = 0; begin < text.size();) {
    ++line_number;
    const std::size_t newline = text.find('\n', begin);
    const auto fail = [&](std::string reason) {
      result.problem = AuditProblem{line_number, std::move(reason)};
      return result;
    };
    if (newline == std::string::npos) {
      return fail("truncated record (the file ends without a newline after it)");
    }
    const std::string_view line(text.data() + begin, newline - begin);
    begin = newline + 1;
    if (line.empty()) return fail("empty line");
    std::string time;
    std::string prev;
    if (std::optional<std::string> why = check_record(line, time, prev)) {
      return fail(*why + " (the record was edited or damaged)");
    }
    if (prev != result.head) {
      if (line_number == 1) {
        return fail("broken chain: the first record's 'prev' is not the genesis value (records "
                    "were removed from the start of the log)");
      }
      return fail(str_cat("broken chain: 'prev' is not the SHA-256 of line ", line_number - 1,
                          " (line ", line_number - 1,
                          " was edited, or records were deleted, inserted or reordered here)"));
    }
    result.head = sha256_hex(line);
    if (result.records == 0) result.first_time = time;
    result.last_time = time;
    ++result.records;
  }
  return result;
}

}  // namespace albion::checkpoint
