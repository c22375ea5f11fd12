// File: checkpoint/residency/residency_policy.h
// Where sovereign data may be written. A policy file declares storage roots and the jurisdiction
// each is in; by default only roots declared "UK" may receive checkpoints, exports or encrypted
// datasets, and plaintext checkpoints only where a root also says allow_plaintext:
//
//   {"format": "albion-residency-policy/1",
//    "allowed_jurisdictions": ["UK"],                  (optional; default ["UK"])
//    "roots": [{"path": "/lustre/uk/project", "jurisdiction": "UK"},
//              {"path": "../runs", "jurisdiction": "UK", "allow_plaintext": true},
//              {"path": "/lustre/uk/project/eu-mirror", "jurisdiction": "EU"}]}
//
// Relative roots are relative to the directory the policy file really is in. Targets (which need
// not exist yet) and roots are resolved as the writer's open() will resolve them (symlinks
// followed, ".." after that) and compared component by component, so neither a symlink nor ".."
// leads out of a root, and /data/uk2 is not inside /data/uk. The innermost root holding a target
// decides.
//
//   ResidencyPolicy policy = ResidencyPolicy::load(recipe.checkpoint.policy);
//   fs::path dir = policy.require_allowed(checkpoint_dir, StoragePurpose::kCheckpoint, plaintext);
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/base/error.h"

namespace albion::checkpoint {

inline constexpr const char* kResidencyPolicyFormat = "albion-residency-policy/1";

// A refused location: a usage error (exit code 2), raised before anything is written.
class ResidencyError : public UsageError {
 public:
  using UsageError::UsageError;
};

enum class StoragePurpose { kCheckpoint, kExport, kEncryptedDataset };
const char* storage_purpose_name(StoragePurpose purpose);  // "checkpoints", "exports", ...

struct StorageRoot {
  std::filesystem::path path;  // canonical
  std::string jurisdiction;    // "UK", "EU", ...: 2 to 8 capital letters
  bool allow_plaintext = false;
};

class ResidencyPolicy {
 public:
  // UsageError naming the file (and the key) when it is unreadable or malformed.
  static ResidencyPolicy load(const std::filesystem::path& policy_file);
  static ResidencyPolicy parse(std::string_view json_text, const std::filesystem::path& source,
                               const std::filesystem::path& base_dir);

  const std::filesystem::path& source() const { return source_; }
  const std::vector<StorageRoot>& roots() const { return roots_; }
  const std::vector<std::string>& allowed_jurisdictions() const { return allowed_; }

  // The innermost root holding `target` (which need not exist yet), compared canonically.
  std::optional<StorageRoot> root_of(const std::filesystem::path& target) const;

  // The canonical target when the policy lets `purpose` write there (plaintext: also the root's
  // allow_plaintext); else ResidencyError, one line naming the target, the policy and the reason.
  std::filesystem::path require_allowed(const std::filesystem::path& target, StoragePurpose purpose,
                                        bool plaintext) const;

 private:
  std::filesystem::path source_;
  std::vector<StorageRoot> roots_;
  std::vector<std::string> allowed_ = {"UK"};
};

// `path` made absolute and resolved as the kernel will resolve it when it is created: every
// existing symlink followed (dangling ones too), ".." taken after what precedes it is resolved,
// missing components kept as names. UsageError on a symlink loop. See Note [Physical resolution]
// in residency_policy.cpp.
std::filesystem::path canonical_target(const std::filesystem::path& path);

}  // namespace albion::checkpoint
