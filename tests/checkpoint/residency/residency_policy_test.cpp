// File: tests/checkpoint/residency/residency_policy_test.cpp
// The residency policy with real directories and symlinks: only declared UK roots receive data;
// neither "..", a symlink nor a sibling with a common prefix escapes a root; the innermost root
// decides; plaintext needs the root's permission; malformed policies name the file and key.
// Targets are resolved as open() will: "missing/../link", dangling symlinks and loops included.
#include <gtest/gtest.h>

#include "checkpoint/residency/residency_policy.h"
#include "tests/checkpoint/temp_dir.h"

namespace albion::checkpoint {
namespace {

namespace fs = std::filesystem;

class ResidencyPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* d : {"uk", "uk2", "uk/eu", "outside", "uk/plain"}) fs::create_directories(dir / d);
    fs::create_directory_symlink(dir / "outside", dir / "uk" / "escape");   // inside, pointing out
    fs::create_directory_symlink(dir / "uk", dir / "outside" / "into-uk");  // outside, pointing in
    fs::create_symlink(dir / "outside" / "not-yet", dir / "uk" / "dangling");  // open(O_CREAT) follows it
    fs::create_symlink("loop-b", dir / "uk" / "loop-a");
    fs::create_symlink("loop-a", dir / "uk" / "loop-b");
    write_policy(R"({"format": "albion-residency-policy/1", "roots": [
      {"path": "uk", "jurisdiction": "UK"},
      {"path": "uk/eu", "jurisdiction": "EU"},
      {"path": "uk/plain", "jurisdiction": "UK", "allow_plaintext": true}]})");
  }
  void write_policy(const std::string& text) { testing::write_file(dir / "policy.json", text); }
  ResidencyPolicy policy() { return ResidencyPolicy::load(dir / "policy.json"); }

  // The refusal's message, or "" when allowed.
  std::string refusal(const fs::path& target, bool plaintext = false) {
    try {
      policy().require_allowed(target, StoragePurpose::kCheckpoint, plaintext);
      return "";
    } catch (const ResidencyError& error) {
      const std::string message = error.what();
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
      EXPECT_NE(message.find("policy.json"), std::string::npos) << message;
      EXPECT_NE(message.find(target.string()), std::string::npos) << message;
      return message;
    }
  }

  testing::TempDir dir;
};

TEST_F(ResidencyPolicyTest, UkRootsAreAllowedAndNothingEscapes) {
  EXPECT_EQ(refusal(dir / "uk" / "run" / "checkpoints"), "");  // need not exist yet
  EXPECT_EQ(policy().require_allowed(dir / "uk" / "a" / ".." / "b", StoragePurpose::kExport, false),
            canonical_target(dir / "uk" / "b"));
  EXPECT_NE(refusal(dir / "outside" / "ckpt"), "");
  EXPECT_NE(refusal(dir / "uk2" / "ckpt"), "");                       // a sibling with a common prefix
  EXPECT_NE(refusal(dir / "uk" / ".." / "outside" / "ckpt"), "");      // ".." out of the root
  EXPECT_NE(refusal(dir / "uk" / "new" / ".." / ".." / "outside"), "");
  EXPECT_NE(refusal(dir / "uk" / "escape" / "ckpt"), "");              // symlink inside pointing out
  EXPECT_NE(refusal(dir / "uk" / "escape" / ".." / "ckpt"), "");       // its "..": the target's parent
  EXPECT_EQ(refusal(dir / "outside" / "into-uk" / "ckpt"), "");        // symlink outside pointing in
  EXPECT_NE(refusal(dir / "uk" / "missing" / ".." / "escape" / "ckpt"), "");  // ".." then a symlink
  EXPECT_NE(refusal(dir / "uk" / "dangling"), "");                     // a dangling symlink pointing out
  EXPECT_NE(refusal(dir / "uk" / "dangling" / "ckpt"), "");
  EXPECT_NE(refusal(dir / "uk" / "loop-a" / "ckpt").find("symbolic links"), std::string::npos);
  EXPECT_NE(refusal(dir / "uk" / "eu" / "ckpt").find("jurisdiction EU"), std::string::npos);
}

TEST_F(ResidencyPolicyTest, InnermostRootDecides) {
  const ResidencyPolicy p = policy();
  EXPECT_EQ(p.allowed_jurisdictions(), std::vector<std::string>{"UK"});  // the default
  EXPECT_EQ(p.root_of(dir / "uk" / "eu" / "x")->jurisdiction, "EU");
  EXPECT_EQ(p.root_of(dir / "uk" / "eu" / "x")->path, canonical_target(dir / "uk" / "eu"));
  EXPECT_EQ(p.root_of(dir / "uk" / "x")->path, canonical_target(dir / "uk"));
  EXPECT_EQ(p.root_of(dir / "uk" / "eu"  / ".." / "x")->jurisdiction, "UK");
  EXPECT_FALSE(p.root_of(dir / "uk2" / "x").has_value());
  EXPECT_FALSE(p.root_of(dir / "uk" / "loop-a").has_value());
  EXPECT_THROW(p.require_allowed(dir / "uk" / "eu" / "data", StoragePurpose::kEncryptedDataset, false),
               ResidencyError);
  EXPECT_NO_THROW(p.require_allowed(dir / "uk" / "data", StoragePurpose::kEncryptedDataset, false));
}

TEST_F(ResidencyPolicyTest, RelativeRootsAreRelativeToThePolicyFile) {
  fs::create_directories(dir / "repo" / "configs");
  testing::write_file(dir / "repo" / "configs" / "policy.json",
                      R"({"format": "albion-residency-policy/1", "roots": [{"path": "../../uk", "jurisdiction": "UK"}]})");
  const ResidencyPolicy p = ResidencyPolicy::load(dir / "repo" / "configs" / "policy.json");
  ASSERT_EQ(p.roots().size(), 1u);
  EXPECT_EQ(p.roots()[0].path, canonical_target(dir / "uk"));
  EXPECT_NO_THROW(p.require_allowed(dir / "uk" / "ckpt", StoragePurpose::kCheckpoint, false));
  EXPECT_THROW(p.require_allowed(dir / "repo" / "ckpt", StoragePurpose::kCheckpoint, false), ResidencyError);
}

TEST_F(ResidencyPolicyTest, RefusalsAreOneLineUsageErrors) {
  try {
    policy().require_allowed(dir / "outside" / "export", StoragePurpose::kExport, false);
    FAIL() << "allowed";
  } catch (const UsageError& error) {  // exit code 2
    EXPECT_EQ(error.exit_code(), ExitCode::kUsage);
    const std::string message = error.what();
    EXPECT_NE(message.find("exports"), std::string::npos) << message;
    EXPECT_NE(message.find((dir / "outside" / "export").string()), std::string::npos) << message;
    EXPECT_NE(message.find((dir / "policy.json").string()), std::string::npos) << message;
    EXPECT_NE(message.find("no storage root"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST_F(ResidencyPolicyTest, PlaintextNeedsTheRootsPermission) {
  EXPECT_NE(refusal(dir / "uk" / "ckpt", true).find("allow_plaintext"), std::string::npos);
  EXPECT_EQ(refusal(dir / "uk" / "ckpt", false), "");
  EXPECT_EQ(refusal(dir / "uk" / "plain" / "ckpt", true), "");
}

TEST_F(ResidencyPolicyTest, AllowedJurisdictionsCanBeWidened) {
  write_policy(R"({"format": "albion-residency-policy/1", "allowed_jurisdictions": ["UK", "EU"],
    "roots": [{"path": "uk", "jurisdiction": "UK"}, {"path": "uk/eu", "jurisdiction": "EU"}]})");
  EXPECT_EQ(refusal(dir / "uk" / "eu" / "ckpt"), "");
  EXPECT_EQ(policy().root_of(dir / "uk" / "eu" / "x")->jurisdiction, "EU");
}

TEST_F(ResidencyPolicyTest, MalformedPoliciesNameFileAndKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not valid JSON"},
      {R"([])", "(top level)"},
      {R"({"roots": [{"path": "uk", "jurisdiction": "UK"}]})", "format"},
      {R"({"format": "albion-residency-policy/1"})", "roots"},
      {R"({"format": "albion-residency-policy/1", "roots": []})", "roots"},
      {R"({"format": "albion-residency-policy/1", "roots": [{"path": "uk"}]})", "roots[0].jurisdiction"},
      {R"({"format": "albion-residency-policy/1", "roots": [{"path": "uk", "jurisdiction": "uk"}]})",
       "roots[0].jurisdiction"},
      {R"({"format": "albion-residency-policy/1", "roots": [{"path": 3, "jurisdiction": "UK"}]})", "roots[0].path"},
      {R"({"format": "albion-residency-policy/1", "roots": [{"path": "uk", "jurisdiction": "UK", "allow_plaintext": "yes"}]})",
       "roots[0].allow_plaintext"},
      {R"({"format": "albion-residency-policy/1", "roots": [{"path": "uk", "jurisdiction": "UK", "extra": 1}]})",
       "roots[0].extra"},
      {R"({"format": "albion-residency-policy/1", "rots": []})", "rots"},
      {R"({"format": "albion-residency-policy/1", "allowed_jurisdictions": [], "roots": [{"path": "uk", "jurisdiction": "UK"}]})",
       "allowed_jurisdictions"},
      {R"({"format": "albion-residency-policy/1", "roots": [{"path": "uk", "jurisdiction": "UK"}, {"path": "uk/", "jurisdiction": "UK"}]})",
       "declared twice"},
      {R"({"format": "albion-residency-policy/1", "roots": [{"path": "uk/loop-a", "jurisdiction": "UK"}]})",
       "roots[0].path"},
      {R"({"format": "albion-residency-policy/2", "roots": [{"path": "uk", "jurisdiction": "UK"}]})", "format"},
      {R"({"format": "albion-residency-policy/1", "allowed_jurisdictions": ["uk"], "roots": [{"path": "uk", "jurisdiction": "UK"}]})",
       "allowed_jurisdictions"},
      {R"({"format": "albion-residency-policy/1", "roots": [{"path": "uk", "jurisdiction": "UNITEDKINGDOM"}]})",
       "roots[0].jurisdiction"},
      {R"({"format": "albion-residency-policy/1", "roots": ["uk"]})", "roots[0]"},
      {R"({"format": "albion-residency-policy/1", "roots": {"path": "uk"}})", "roots"},
  };
  for (const auto& [text, key] : cases) {
    write_policy(text);
    try {
      policy();
      ADD_FAILURE() << "accepted: " << text;
    } catch (const UsageError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find("policy.json"), std::string::npos) << message;
      EXPECT_NE(message.find(key), std::string::npos) << key << " not in: " << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
  EXPECT_THROW(ResidencyPolicy::load(dir / "missing.json"), UsageError);
}

}  // namespace
}  // namespace albion::checkpoint
