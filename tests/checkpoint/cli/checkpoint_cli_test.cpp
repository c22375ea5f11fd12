// File: tests/checkpoint/cli/checkpoint_cli_test.cpp
// `albion keys generate` and `albion ckpt audit` as a user meets them: files, modes, exit codes,
// one-line errors, no key on any output; the planned ckpt verbs stay honest about it.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/crypto/hex.h"
#include "checkpoint/keys/key_provider.h"
#include "tests/checkpoint/temp_dir.h"

namespace albion::checkpoint {
namespace {

using testing::read_file;
using testing::TempDir;

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

Outcome run_albion(const std::string& arguments) {
  Outcome run;
  const std::string command = std::string(ALBION_EXECUTABLE) + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe)) run.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

int count_lines(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

TEST(KeysCli, GenerateWritesAnOwnerOnlyKeyAndPrintsOnlyItsId) {
  TempDir dir;
  const auto path = dir / "kek.bin";
  const Outcome run = run_albion("keys generate --out " + path.string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_EQ(info.st_size, 32);
  const std::string key = read_file(path);
  const std::string key_hex = to_hex(std::span(reinterpret_cast<const std::uint8_t*>(key.data()), key.size()));
  EXPECT_EQ(run.output.find(key_hex.substr(0, 16)), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find(key), std::string::npos);
  const std::string id = open_key_provider("file:" + path.string())->key_id();
  EXPECT_NE(run.output.find("key id: " + id + "\n"), std::string::npos) << run.output;
}

TEST(KeysCli, RefusesToOverwriteWithoutForce) {
  TempDir dir;
  const auto path = dir / "kek.bin";
  ASSERT_EQ(run_albion("keys generate --out " + path.string()).exit_code, 0);
  const std::string before = read_file(path);
  const Outcome refused = run_albion("keys generate --out " + path.string());
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_EQ(count_lines(refused.output), 1) << refused.output;
  EXPECT_EQ(refused.output.rfind("albion: error: key file '" + path.string() + "' already exists", 0), 0u)
      << refused.output;
  EXPECT_NE(refused.output.find("--force"), std::string::npos);
  EXPECT_EQ(read_file(path), before);
  EXPECT_EQ(run_albion("keys generate --force --out " + path.string()).exit_code, 0);
  EXPECT_NE(read_file(path), before);
}

TEST(KeysCli, BadArgumentsAreUsageErrors) {
  TempDir dir;
  EXPECT_EQ(run_albion("keys generate").exit_code, 2);
  EXPECT_EQ(run_albion("keys").exit_code, 2);
  const Outcome typo = run_albion("keys genrate");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.output.find("did you mean 'generate'"), std::string::npos) << typo.output;
  EXPECT_EQ(run_albion("keys generate --out " + (dir / "missing" / "k").string()).exit_code, 2);
  EXPECT_EQ(run_albion("keys generate --out " + (dir / "k").string() + " --frobnicate").exit_code, 2);
  for (const char* help : {"keys --help", "keys generate --help"}) {
    const Outcome run = run_albion(help);
    EXPECT_EQ(run.exit_code, 0) << help;
    EXPECT_NE(run.output.find("usage: albion keys generate --out FILE [--force]"), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("--force"), std::string::npos);
  }
}

TEST(CkptCli, AuditVerifiesAnIntactLogAndNamesTheFirstBadLine) {
  TempDir dir;
  const auto log = dir / "audit.jsonl";
  AuditLog audit(log, AuditIdentity{"node", "user", 0});
  std::string head;
  for (int i = 0; i < 3; ++i) head = audit.append({AuditAction::kSave, "/ckpt/" + std::to_string(i), "", AuditOutcome::kOk, ""});
  const Outcome good = run_albion("ckpt audit " + log.string());
  EXPECT_EQ(good.exit_code, 0) << good.output;
  EXPECT_NE(good.output.find("3 record(s), hash chain intact"), std::string::npos) << good.output;
  EXPECT_NE(good.output.find(head), std::string::npos) << good.output;

  std::string text = read_file(log);
  text.replace(text.find("/ckpt/1"), 7, "/ckpt/9");
  testing::write_file(log, text);
  const Outcome bad = run_albion("ckpt audit " + log.string());
  EXPECT_EQ(bad.exit_code, 3) << bad.output;
  EXPECT_EQ(count_lines(bad.output), 1) << bad.output;
  EXPECT_EQ(bad.output.rfind("albion: error: audit log '" + log.string() + "' line 3: broken chain", 0), 0u)
      << bad.output;

  EXPECT_EQ(run_albion("ckpt audit " + (dir / "missing.jsonl").string()).exit_code, 2);
  EXPECT_EQ(run_albion("ckpt audit").exit_code, 2);
  EXPECT_EQ(run_albion("ckpt audit --help").exit_code, 0);
}

TEST(CkptCli, PlannedVerbsSayTheyAreNotImplemented) {
  const Outcome help = run_albion("ckpt --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("usage: albion ckpt"), std::string::npos);
  for (const char* verb : {"list", "inspect", "verify", "rotate-key", "export"}) {
    const Outcome run = run_albion(std::string("ckpt ") + verb + " x");
    EXPECT_EQ(run.exit_code, 1) << verb << ": " << run.output;
    EXPECT_NE(run.output.find("albion: error: 'albion ckpt " + std::string(verb) + "' is not implemented yet (issue #6"),
              std::string::npos) << run.output;
    const Outcome verb_help = run_albion(std::string("ckpt ") + verb + " --help");
    EXPECT_EQ(verb_help.exit_code, 1) << verb;
    EXPECT_NE(verb_help.output.find("usage: albion ckpt " + std::string(verb)), std::string::npos);
    EXPECT_NE(verb_help.output.find("not implemented yet"), std::string::npos);
  }
  EXPECT_EQ(run_albion("ckpt").exit_code, 2);
  const Outcome typo = run_albion("ckpt adit log");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.output.find("did you mean 'audit'"), std::string::npos) << typo.output;
}

}  // namespace
}  // namespace albion::checkpoint
