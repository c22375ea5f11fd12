// File: tests/checkpoint/audit/audit_log_test.cpp
// The audit chain: appends verify; every edit (changed field, deleted, inserted, reordered or
// truncated line, removed head) is reported at the first bad line; concurrent appends from many
// processes keep one intact chain.
#include "checkpoint/audit/audit_log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

#include "checkpoint/audit/audit_verify.h"
#include "checkpoint/crypto/sha256.h"
#include "tests/checkpoint/temp_dir.h"

namespace albion::checkpoint {
namespace {

using testing::read_file;
using testing::TempDir;
using testing::write_file;

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuditLog audit(path_, AuditIdentity{"node1", "alice", 2});
    const AuditAction actions[] = {AuditAction::kKeyGeneration, AuditAction::kSave, AuditAction::kLoad,
                                   AuditAction::kRefusal, AuditAction::kExport};
    for (AuditAction action : actions) {
      head_ = audit.append({action, "/data/uk/run/step-0000100", "aa01503bff24294d05feaf3b5e61f5f3",
                            action == AuditAction::kRefusal ? AuditOutcome::kRefused : AuditOutcome::kOk,
                            action == AuditAction::kRefusal ? "path outside the allowed roots" : ""});
    }
    lines_ = split_lines(read_file(path_));
  }

  AuditVerification verify_edited(const std::vector<std::string>& lines, const std::string& suffix = "") {
    write_file(path_, join_lines(lines) + suffix);
    return verify_audit_log(path_);
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_ / "audit.jsonl";
  std::vector<std::string> lines_;
  std::string head_;
};

TEST_F(AuditLogTest, AppendedRecordsVerify) {
  ASSERT_EQ(lines_.size(), 5u);
  const AuditVerification result = verify_audit_log(path_);
  EXPECT_FALSE(result.problem.has_value()) << result.problem->reason;
  EXPECT_EQ(result.records, 5u);
  EXPECT_EQ(result.head, head_);
  EXPECT_EQ(result.head, sha256_hex(lines_.back()));
  EXPECT_NE(lines_[0].find(std::string("\"prev\":\"") + std::string(kAuditGenesis) + "\""), std::string::npos);
  EXPECT_NE(lines_[1].find(sha256_hex(lines_[0])), std::string::npos);
  for (const char* field : {"\"time\":\"", "\"host\":\"node1\"", "\"user\":\"alice\"", "\"rank\":2",
                            "\"action\":\"save\"", "\"path\":\"/data/uk/run/step-0000100\"",
                            "\"key_id\":\"aa01503bff24294d05feaf3b5e61f5f3\"", "\"outcome\":\"ok\""}) {
    EXPECT_NE(lines_[1].find(field), std::string::npos) << field << " in " << lines_[1];
  }
  EXPECT_NE(lines_[3].find("\"detail\":\"path outside the allowed roots\""), std::string::npos);
  EXPECT_TRUE(is_utc_timestamp(result.first_time)) << result.first_time;
  struct stat info {};
  ASSERT_EQ(::stat(path_.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST_F(AuditLogTest, ChangedFieldBreaksTheChainAtTheNextLine) {
  auto lines = lines_;
  const auto at = lines[1].find("\"outcome\":\"ok\"");
  ASSERT_NE(at, std::string::npos);
  lines[1].replace(at, 14, "\"outcome\":\"failed\"");
  const AuditVerification result = verify_edited(lines);
  ASSERT_TRUE(result.problem.has_value());
  EXPECT_EQ(result.problem->line, 3u);
  EXPECT_NE(result.problem->reason.find("line 2 was edited"), std::string::npos) << result.problem->reason;
  EXPECT_EQ(result.records, 2u);
}

TEST_F(AuditLogTest, InvalidFieldValuesAreReportedOnTheirOwnLine) {
  const std::pair<std::string, std::string> edits[] = {
      {"\"action\":\"load\"", "\"action\":\"loot\""},
      {"\"rank\":2", "\"rank\":\"2\""},
      {"\"user\":\"alice\",", ""},
      {"\"host\":\"node1\"", "\"host\":\"node1\",\"extra\":1"},
  };
  for (const auto& [from, to] : edits) {
    auto lines = lines_;
    const auto at = lines[2].find(from);
    ASSERT_NE(at, std::string::npos) << from;
    lines[2].replace(at, from.size(), to);
    const AuditVerification result = verify_edited(lines);
    ASSERT_TRUE(result.problem.has_value()) << to;
    EXPECT_EQ(result.problem->line, 3u) << to << ": " << result.problem->reason;
  }
}

TEST_F(AuditLogTest, DeletedInsertedAndReorderedLinesAreFound) {
  auto deleted = lines_;
  deleted.erase(deleted.begin() + 2);
  auto result = verify_edited(deleted);
  ASSERT_TRUE(result.problem.has_value());
  EXPECT_EQ(result.problem->line, 3u);

  auto reordered = lines_;
  std::swap(reordered[1], reordered[2]);
  result = verify_edited(reordered);
  ASSERT_TRUE(result.problem.has_value());
  EXPECT_EQ(result.problem->line, 2u);

  auto duplicated = lines_;
  duplicated.insert(duplicated.begin() + 3, lines_[3]);  // a replayed record
  result = verify_edited(duplicated);
  ASSERT_TRUE(result.problem.has_value());
  EXPECT_EQ(result.problem->line, 5u);

  auto headless = lines_;
  headless.erase(headless.begin());
  result = verify_edited(headless);
  ASSERT_TRUE(result.problem.has_value());
  EXPECT_EQ(result.problem->line, 1u);
  EXPECT_NE(result.problem->reason.find("genesis"), std::string::npos);
}

TEST_F(AuditLogTest, TruncatedMalformedAndEmptyLinesAreFound) {
  std::string text = join_lines(lines_);
  write_file(path_, text.substr(0, text.size() - 10));
  auto result = verify_audit_log(path_);
  ASSERT_TRUE(result.problem.has_value());
  EXPECT_EQ(result.problem->line, 5u);
  EXPECT_NE(result.problem->reason.find("truncated"), std::string::npos);

  auto lines = lines_;
  lines[3] = lines[3].substr(0, lines[3].size() - 1);  // drops the closing brace
  result = verify_edited(lines);
  ASSERT_TRUE(result.problem.has_value());
  EXPECT_EQ(result.problem->line, 4u);
  EXPECT_NE(result.problem->reason.find("malformed JSON"), std::string::npos);

  lines = lines_;
  lines.insert(lines.begin() + 1, "");
  result = verify_edited(lines);
  ASSERT_TRUE(result.problem.has_value());
  EXPECT_EQ(result.problem->line, 2u);

  result = verify_edited({"[1,2,3]"});
  ASSERT_TRUE(result.problem.has_value());
  EXPECT_EQ(result.problem->line, 1u);
}

TEST_F(AuditLogTest, AppendRefusesToChainOntoAPartialRecord) {
  const std::string text = join_lines(lines_);
  write_file(path_, text.substr(0, text.size() - 1));
  AuditLog audit(path_, AuditIdentity{"node1", "alice", 0});
  EXPECT_THROW(audit.append({AuditAction::kSave, "/x", "", AuditOutcome::kOk, ""}), IntegrityError);
  EXPECT_EQ(read_file(path_), text.substr(0, text.size() - 1));
}

TEST(AuditLog, EmptyAndMissingLogs) {
  TempDir dir;
  write_file(dir / "empty.jsonl", "");
  const AuditVerification empty = verify_audit_log(dir / "empty.jsonl");
  EXPECT_FALSE(empty.problem.has_value());
  EXPECT_EQ(empty.records, 0u);
  EXPECT_EQ(empty.head, kAuditGenesis);
  EXPECT_THROW(verify_audit_log(dir / "missing.jsonl"), UsageError);
}

TEST(AuditLog, ConcurrentProcessesKeepOneChain) {
  TempDir dir;
  const auto path = dir / "audit.jsonl";
  constexpr int kProcesses = 6;
  constexpr int kRecordsEach = 25;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int status = 0;
      try {
        AuditLog audit(path, AuditIdentity{"node", "user", p});
        for (int r = 0; r < kRecordsEach; ++r) {
          audit.append({AuditAction::kSave, "/ckpt/step-" + std::to_string(r), "", AuditOutcome::kOk,
                        std::string(static_cast<std::size_t>(100 * p + r), 'x')});
        }
      } catch (...) {
        status = 1;
      }
      ::_exit(status);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const AuditVerification result = verify_audit_log(path);
  EXPECT_FALSE(result.problem.has_value()) << result.problem->line << ": " << result.problem->reason;
  EXPECT_EQ(result.records, static_cast<std::size_t>(kProcesses * kRecordsEach));
}

}  // namespace
}  // namespace albion::checkpoint
