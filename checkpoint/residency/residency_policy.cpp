// File: checkpoint/residency/residency_policy.cpp
// Parsing the policy file, resolving paths as the writer's open() will (Note [Physical
// resolution]) and deciding which root, if any, may hold a target.
#include "checkpoint/residency/residency_policy.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>

#include "runtime/base/check.h"

namespace albion::checkpoint {

namespace fs = std::filesystem;

namespace {

using Json = nlohmann::json;

bool is_jurisdiction(const std::string& code) {
  if (code.size() < 2 || code.size() > 8) return false;
  for (char c : code) {
    if (c < 'A' || c > 'Z') return false;
  }
  return true;
}

std::string joined(const std::vector<std::string>& codes) {
  std::string out;
  for (const std::string& code : codes) out += (out.empty() ? "" : ", ") + code;
  return out;
}

// True when `inner` is `outer` or below it, comparing whole components (/data/uk2 is not in
// /data/uk). Both are resolved, so neither holds "." or "..".
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

// Note [Physical resolution]: a target is resolved the way the kernel will resolve it when the
// writer creates it, one component at a time from "/": an existing symlink (dangling ones too:
// open(O_CREAT) follows them) is replaced by its target, ".." steps to the parent of what has
// been resolved so far (so "link/.." is the parent of the link's target), and a component that
// does not exist stays a plain name. Lexical normalisation alone is wrong both ways: it turns
// "uk/missing/../escape" into "uk/escape" without following `escape`, and "link/.." into the
// link's own directory. std::filesystem::weakly_canonical has the first flaw.
constexpr int kMaxSymlinkHops = 40;  // Linux's MAXSYMLINKS

// `path`'s components below its root, reversed, so pending.back() is the next to resolve.
void push_components(const fs::path& path, std::vector<fs::path>& pending) {
  const fs::path relative = path.relative_path();
  std::vector<fs::path> parts(relative.begin(), relative.end());
  pending.insert(pending.end(), parts.rbegin(), parts.rend());
}

// See Note [Physical resolution]; nullopt after too many symlinks (a loop).
std::optional<fs::path> resolve_physically(const fs::path& path) {
  std::vector<fs::path> pending;
  push_components(path.is_absolute() ? path : fs::current_path() / path, pending);
  fs::path resolved = "/";
  int hops = 0;
  while (!pending.empty()) {
    const fs::path part = std::move(pending.back());
    pending.pop_back();
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      resolved = resolved.parent_path();  // "/" stays "/"
      continue;
    }
    const fs::path next = resolved / part;
    std::error_code error;
    // A component that cannot be looked up (missing, not a directory, no permission) cannot be
    // followed by the writer either: it stays a plain name.
    if (!fs::is_symlink(fs::symlink_status(next, error))) {
      resolved = next;
      continue;
    }
    const fs::path link = fs::read_symlink(next, error);
    if (error) {
      resolved = next;
      continue;
    }
    if (++hops > kMaxSymlinkHops) return std::nullopt;
    if (link.is_absolute()) resolved = "/";
    push_components(link, pending);
  }
  return resolved;
}

// The most specific root holding `resolved` (an EU directory inside a UK root is EU), or null.
const StorageRoot* innermost_root(const std::vector<StorageRoot>& roots, const fs::path& resolved) {
  const StorageRoot* best = nullptr;
  for (const StorageRoot& root : roots) {
    if (!is_within(resolved, root.path)) continue;
    if (best == nullptr || std::distance(root.path.begin(), root.path.end()) >
                               std::distance(best->path.begin(), best->path.end())) {
      best = &root;
    }
  }
  return best;
}

}  // namespace

const char* storage_purpose_name(StoragePurpose purpose) {
  switch (purpose) {
    case StoragePurpose::kCheckpoint: return "checkpoints";
    case StoragePurpose::kExport: return "exports";
    case StoragePurpose::kEncryptedDataset: return "encrypted datasets";
  }
  return "data";
}

fs::path canonical_target(const fs::path& path) {
  std::optional<fs::path> resolved = resolve_physically(path);
  ALBION_CHECK_AS(UsageError, resolved.has_value(), "path ", path.string(),
                  ": cannot be resolved (more than ", kMaxSymlinkHops, " symbolic links: a loop?)");
  return *resolved;
}

ResidencyPolicy ResidencyPolicy::load(const fs::path& policy_file) {
  std::ifstream in(policy_file, std::ios::binary);
  ALBION_CHECK_AS(UsageError, fs::is_regular_file(policy_file) && in.good(), "residency policy ",
                  policy_file.string(), ": cannot read it");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse(text, policy_file, canonical_target(policy_file).parent_path());
}

ResidencyPolicy ResidencyPolicy::parse(std::string_view json_text, const fs::path& source, const fs::path& base_dir) {
  const std::string what = "residency policy " + source.string();
  auto fail = [&](const std::string& key, const std::string& why) {
    throw UsageError(str_cat(what, ": ", key, ": ", why));
  };
  const Json root = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) throw UsageError(what + ": not valid JSON");
  if (!root.is_object()) fail("(top level)", "expected an object");
  for (const auto& [key, value] : root.items()) {
    if (key != "format" && key != "allowed_jurisdictions" && key != "roots") {
      fail(key, "unknown key (expected format, allowed_jurisdictions, roots)");
    }
  }
  if (!root.contains("format") || !root["format"].is_string() || root["format"] != kResidencyPolicyFormat) {
    fail("format", std::string("expected \"") + kResidencyPolicyFormat + "\"");
  }
  ResidencyPolicy policy;
  policy.source_ = source;
  if (root.contains("allowed_jurisdictions")) {
    const Json& allowed = root["allowed_jurisdictions"];
    if (!allowed.is_array() || allowed.empty()) fail("allowed_jurisdictions", "expected a non-empty array");
    policy.allowed_.clear();
    for (const Json& code : allowed) {
      if (!code.is_string() || !is_jurisdiction(code.get<std::string>())) {
        fail("allowed_jurisdictions", "expected codes of 2 to 8 capital letters, e.g. \"UK\"");
      }
      policy.allowed_.push_back(code.get<std::string>());
    }
  }
  if (!root.contains("roots") || !root["roots"].is_array() || root["roots"].empty()) {
    fail("roots", "expected a non-empty array of {path, jurisdiction[, allow_plaintext]}");
  }
  std::set<fs::path> seen;
  for (std::size_t i = 0; i < root["roots"].size(); ++i) {
    const Json& entry = root["roots"][i];
    const std::string where = str_cat("roots[", i, "]");
    if (!entry.is_object()) fail(where, "expected an object");
    for (const auto& [key, value] : entry.items()) {
      if (key != "path" && key != "jurisdiction" && key != "allow_plaintext") {
        fail(where + "." + key, "unknown key (expected path, jurisdiction, allow_plaintext)");
      }
    }
    if (!entry.contains("path") || !entry["path"].is_string() || entry["path"].get<std::string>().empty()) {
      fail(where + ".path", "expected a non-empty string");
    }
    if (!entry.contains("jurisdiction") || !entry["jurisdiction"].is_string() ||
        !is_jurisdiction(entry["jurisdiction"].get<std::string>())) {
      fail(where + ".jurisdiction", "expected 2 to 8 capital letters, e.g. \"UK\"");
    }
    if (entry.contains("allow_plaintext") && !entry["allow_plaintext"].is_boolean()) {
      fail(where + ".allow_plaintext", "expected true or false");
    }
    fs::path path = entry["path"].get<std::string>();
    if (path.is_relative()) path = base_dir / path;
    const std::optional<fs::path> resolved = resolve_physically(path);
    if (!resolved) fail(where + ".path", str_cat("'", path.string(), "' cannot be resolved (a symbolic link loop?)"));
    StorageRoot storage{*resolved, entry["jurisdiction"].get<std::string>(), entry.value("allow_plaintext", false)};
    if (!seen.insert(storage.path).second) fail(where + ".path", "'" + storage.path.string() + "' is declared twice");
    policy.roots_.push_back(std::move(storage));
  }
  return policy;
}

std::optional<StorageRoot> ResidencyPolicy::root_of(const fs::path& target) const {
  const std::optional<fs::path> resolved = resolve_physically(target);
  if (!resolved) return std::nullopt;
  const StorageRoot* root = innermost_root(roots_, *resolved);
  return root ? std::optional<StorageRoot>(*root) : std::nullopt;
}

fs::path ResidencyPolicy::require_allowed(const fs::path& target, StoragePurpose purpose, bool plaintext) const {
  const std::string refusing = str_cat("residency: refusing ", plaintext ? "plaintext " : "",
                                       storage_purpose_name(purpose), " in ");
  const std::optional<fs::path> resolved = resolve_physically(target);
  if (!resolved) {
    throw ResidencyError(str_cat(refusing, target.string(), ": more than ", kMaxSymlinkHops,
                                 " symbolic links (a loop?), so ", source_.string(), " cannot place it"));
  }
  const std::string shown = target == *resolved ? target.string()
                                                : str_cat(target.string(), " (resolved: ", resolved->string(), ")");
  const StorageRoot* root = innermost_root(roots_, *resolved);
  if (root == nullptr) {
    throw ResidencyError(str_cat(refusing, shown, ": it is under no storage root declared in ", source_.string()));
  }
  if (std::find(allowed_.begin(), allowed_.end(), root->jurisdiction) == allowed_.end()) {
    throw ResidencyError(str_cat(refusing, shown, ": its root ", root->path.string(), " is in jurisdiction ",
                                 root->jurisdiction, ", and ", source_.string(), " allows only ", joined(allowed_)));
  }
  if (plaintext && !root->allow_plaintext) {
    throw ResidencyError(str_cat(refusing, shown, ": its root ", root->path.string(), " in ", source_.string(),
                                 " does not set allow_plaintext"));
  }
  return *resolved;
}

}  // namespace albion::checkpoint
