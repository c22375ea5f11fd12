// File: checkpoint/audit/audit_record.cpp
#include "checkpoint/audit/audit_record.h"

#include <pwd.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

constexpr std::array<std::pair<AuditAction, const char*>, 7> kActionNames = {{
    {AuditAction::kSave, "save"},
    {AuditAction::kLoad, "load"},
    {AuditAction::kVerify, "verify"},
    {AuditAction::kExport, "export"},
    {AuditAction::kKeyRotation, "key-rotation"},
    {AuditAction::kKeyGeneration, "key-generation"},
    {AuditAction::kRefusal, "refusal"},
}};

constexpr std::array<std::pair<AuditOutcome, const char*>, 3> kOutcomeNames = {{
    {AuditOutcome::kOk, "ok"},
    {AuditOutcome::kFailed, "failed"},
    {AuditOutcome::kRefused, "refused"},
}};

}  // namespace

const char* audit_action_name(AuditAction action) {
  for (const auto& [value, name] : kActionNames) {
    if (value == action) return name;
  }
  return "unknown";
}

const char* audit_outcome_name(AuditOutcome outcome) {
  for (const auto& [value, name] : kOutcomeNames) {
    if (value == outcome) return name;
  }
  return "unknown";
}

std::optional<AuditAction> parse_audit_action(std::string_view text) {
  for (const auto& [value, name] : kActionNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

std::optional<AuditOutcome> parse_audit_outcome(std::string_view text) {
  for (const auto& [value, name] : kOutcomeNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

AuditIdentity current_audit_identity(const ProcessEnvironment& env) {
  AuditIdentity identity;
  identity.host = env.hostname;
  identity.rank = env.world_rank;
  const uid_t uid = ::geteuid();
  std::array<char, 4096> buffer{};
  struct passwd entry {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    identity.user = found->pw_name;
  } else {
    identity.user = str_cat("uid:", uid);  // e.g. a container user with no passwd entry
  }
  return identity;
}

std::string audit_record_line(std::string_view prev, std::string_view utc_time,
                              const AuditIdentity& identity, const AuditEvent& event) {
  nlohmann::ordered_json record;
  record["prev"] = prev;
  record["time"] = utc_time;
  record["host"] = identity.host;
  record["user"] = identity.user;
  record["rank"] = identity.rank;
  record["action"] = audit_action_name(event.action);
  record["path"] = event.path;
  record["key_id"] = event.key_id;
  record["outcome"] = audit_outcome_name(event.outcome);
  if (!event.detail.empty()) record["detail"] = event.detail;
  // Invalid UTF-8 (a path is just bytes) is replaced rather than thrown on: the record must still
  // be written, and the chain covers whatever bytes were written.
  return record.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string utc_timestamp_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  std::array<char, 64> text{};
  std::snprintf(text.data(), text.size(), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(millis));
  return text.data();
}

bool is_utc_timestamp(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS.mmmZ, the only shape utc_timestamp_now writes.
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (text.size() != kShape.size()) return false;
  for (std::size_t i = 0; i < kShape.size(); ++i) {
    const bool ok = kShape[i] == 'd' ? (text[i] >= '0' && text[i] <= '9') : text[i] == kShape[i];
    if (!ok) return false;
  }
  return true;
}

}  // namespace albion::checkpoint
