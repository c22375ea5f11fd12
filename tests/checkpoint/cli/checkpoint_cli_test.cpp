// File: tests/checkpoint/cli/checkpoint_cli_test.cpp
// `albion keys generate`, `albion ckpt ...` and checkpointed `albion train` as a user meets them:
// files, modes, exit codes, one-line errors, audit records, no key on any output.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/crypto/hex.h"
#include "checkpoint/export/safetensors.h"
#include "checkpoint/keys/key_provider.h"
#include "runtime/base/check.h"
#include "tests/checkpoint/temp_dir.h"

namespace albion::checkpoint {
namespace {

namespace fs = std::filesystem;

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

// The JSON object a `--json` command printed on its own line (progress goes to stderr, which
// `output` holds too); nothing where it printed none.
std::optional<nlohmann::json> printed_json(const std::string& output) {
  const std::size_t at = output.find("{\"");
  if (at == std::string::npos) return std::nullopt;
  return nlohmann::json::parse(output.substr(at, output.find('\n', at) - at));
}

// Each JSON object a command printed on a line of its own, in order (eval --every prints one a model).
std::vector<nlohmann::json> printed_json_lines(const std::string& output) {
  std::vector<nlohmann::json> lines;
  std::istringstream printed(output);
  for (std::string line; std::getline(printed, line);) {
    if (line.starts_with("{")) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
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

TEST(CkptCli, UnknownVerbsAreUsageErrors) {
  const Outcome help = run_albion("ckpt --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("usage: albion ckpt"), std::string::npos);
  for (const char* verb : {"list", "inspect", "verify", "rotate-key", "export"}) {
    const Outcome verb_help = run_albion(std::string("ckpt ") + verb + " --help");
    EXPECT_EQ(verb_help.exit_code, 0) << verb;
    EXPECT_NE(verb_help.output.find("usage: albion ckpt " + std::string(verb)), std::string::npos);
    EXPECT_EQ(run_albion(std::string("ckpt ") + verb).exit_code, 2) << verb;
  }
  EXPECT_EQ(run_albion("ckpt").exit_code, 2);
  const Outcome typo = run_albion("ckpt adit log");
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.output.find("did you mean 'audit'"), std::string::npos) << typo.output;
}

// The whole life of a run's checkpoints through the CLI: `albion train` saves encrypted
// checkpoints under a UK root (and resumes from them), then list, inspect, verify, rotate-key and
// export; residency refusals exit 2 before writing; every access lands in the audit log, and no
// key material appears in any output or in the log.
class CkptCliFlow : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir / "uk");
    fs::create_directories(dir / "elsewhere");
    testing::write_file(dir / "policy.json", R"({"format": "albion-residency-policy/1",
      "roots": [{"path": "uk", "jurisdiction": "UK"}, {"path": "elsewhere", "jurisdiction": "US"}]})");
    ASSERT_EQ(run_albion("keys generate --out " + (dir / "kek").string()).exit_code, 0);
    ASSERT_EQ(run_albion("keys generate --out " + (dir / "new-kek").string()).exit_code, 0);
    ASSERT_EQ(run_albion("keys generate --out " + (dir / "wrong-kek").string()).exit_code, 0);
  }
  // `dataset` (under dir) is prepared with `tokenizer` on first use.
  std::string train_args(const std::string& run, int steps, bool encrypted = true, int sample_tokens = 0,
                         const std::string& tokenizer = "byte", const std::string& dataset = "data") {
    return str_cat("train ", ALBION_SOURCE_DIR, "/recipes/tiny.ini --run.device=cpu --run.dir=", (dir / run).string(),
                   " --data.tokenizer=", tokenizer, " --data.dataset=", (dir / dataset).string(),
                   " --data.inputs=", ALBION_SOURCE_DIR,
                   "/recipes/corpus/austen/persuasion.txt --train.seq_len=32 --train.micro_batch=2",
                   " --train.global_batch_tokens=64 --train.steps=", steps,
                   " --optim.warmup_steps=1 --eval.interval=0 --eval.sample_tokens=", sample_tokens,
                   " --log.tensorboard=false",
                   " --checkpoint.interval=2 --checkpoint.policy=", (dir / "policy.json").string(),
                   encrypted ? " --checkpoint.key=file:" + (dir / "kek").string() : " --checkpoint.plaintext=true");
  }
  // Nothing secret in `text`: neither key file's bytes in hex.
  void expect_no_key_material(const std::string& text, const std::string& where) {
    for (const char* name : {"kek", "new-kek"}) {
      const std::string key = read_file(dir / name);
      const std::string hex = to_hex(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(key.data()), key.size()));
      EXPECT_EQ(text.find(hex), std::string::npos) << where << " holds " << name;
      EXPECT_EQ(text.find(hex.substr(0, 16)), std::string::npos) << where << " holds part of " << name;
    }
  }
  TempDir dir;
};

TEST_F(CkptCliFlow, TrainSaveResumeAndEveryVerb) {
  std::string all_output;
  const Outcome first = run_albion(train_args("uk/run", 4));
  all_output += first.output;
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const fs::path checkpoints = dir / "uk" / "run" / "checkpoints";
  const fs::path ckpt = checkpoints / "step-00000004";
  ASSERT_TRUE(fs::exists(ckpt / "manifest.json")) << first.output;

  // Resuming: a longer run starts from step 4.
  const Outcome resumed = run_albion(train_args("uk/run", 6));
  all_output += resumed.output;
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + ckpt.string() + " at step 4"), std::string::npos) << resumed.output;

  const Outcome list = run_albion("ckpt list " + checkpoints.string());
  EXPECT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("step-00000006"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("(latest)"), std::string::npos) << list.output;

  const std::string key = " --key file:" + (dir / "kek").string();
  const Outcome header = run_albion("ckpt inspect " + ckpt.string());
  EXPECT_EQ(header.exit_code, 0) << header.output;
  EXPECT_NE(header.output.find("AES-256-GCM"), std::string::npos) << header.output;
  EXPECT_EQ(header.output.find("model.wte"), std::string::npos) << "index shown without a key";
  const Outcome index = run_albion("ckpt inspect " + ckpt.string() + key);
  EXPECT_EQ(index.exit_code, 0) << index.output;
  EXPECT_NE(index.output.find("optim.exp_avg"), std::string::npos) << index.output;

  const Outcome verified = run_albion("ckpt verify " + ckpt.string() + key);
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_NE(verified.output.find(" MB/s "), std::string::npos) << verified.output;  // the progress line
  const Outcome wrong = run_albion("ckpt verify " + ckpt.string() + " --key file:" + (dir / "wrong-kek").string());
  EXPECT_EQ(wrong.exit_code, 3) << wrong.output;
  EXPECT_EQ(count_lines(wrong.output), 1) << wrong.output;
  EXPECT_NE(wrong.output.find("wrong key"), std::string::npos) << wrong.output;

  // A flipped byte in a shard: exit 3 naming the file and the check.
  const fs::path shard = ckpt / "shard-00000.h5";
  const std::string original = read_file(shard);
  std::string damaged = original;
  damaged[damaged.size() / 3] ^= 0x40;
  testing::write_file(shard, damaged);
  const Outcome tampered = run_albion("ckpt verify " + ckpt.string() + key);
  EXPECT_EQ(tampered.exit_code, 3) << tampered.output;
  EXPECT_NE(tampered.output.find(shard.string() + ": SHA-256 check failed"), std::string::npos) << tampered.output;
  testing::write_file(shard, original);

  const std::string new_key = " --new-key file:" + (dir / "new-kek").string();
  const Outcome rotated = run_albion("ckpt rotate-key " + ckpt.string() + key + new_key);
  all_output += rotated.output;
  EXPECT_EQ(rotated.exit_code, 0) << rotated.output;
  EXPECT_EQ(run_albion("ckpt verify " + ckpt.string() + " --key file:" + (dir / "new-kek").string()).exit_code, 0);
  EXPECT_EQ(run_albion("ckpt verify " + ckpt.string() + key).exit_code, 3);

  const std::string policy = " --policy " + (dir / "policy.json").string();
  const Outcome refused = run_albion("ckpt export " + ckpt.string() + " --format safetensors --out " +
                                     (dir / "elsewhere" / "hf").string() + " --key file:" +
                                     (dir / "new-kek").string() + policy);
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("jurisdiction US"), std::string::npos) << refused.output;
  EXPECT_FALSE(fs::exists(dir / "elsewhere" / "hf"));
  const Outcome exported = run_albion("ckpt export " + ckpt.string() + " --format safetensors --out " +
                                      (dir / "uk" / "hf").string() + " --key file:" + (dir / "new-kek").string() +
                                      policy);
  all_output += exported.output;
  EXPECT_EQ(exported.exit_code, 0) << exported.output;
  EXPECT_TRUE(fs::exists(dir / "uk" / "hf" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "uk" / "hf" / "config.json"));

  // A run whose checkpoints would leave the UK roots is refused before it writes anything.
  const Outcome outside = run_albion(train_args("elsewhere/run", 2));
  EXPECT_EQ(outside.exit_code, 2) << outside.output;
  EXPECT_NE(outside.output.find("residency: refusing"), std::string::npos) << outside.output;
  EXPECT_FALSE(fs::exists(dir / "elsewhere" / "run" / "checkpoints"));
  const Outcome plaintext = run_albion(train_args("uk/plain", 2, /*encrypted=*/false));
  EXPECT_EQ(plaintext.exit_code, 2) << plaintext.output;
  EXPECT_NE(plaintext.output.find("allow_plaintext"), std::string::npos) << plaintext.output;

  // The audit log: intact, every kind of access recorded, no key material anywhere.
  const fs::path log = dir / "uk" / "run" / "audit.jsonl";
  const Outcome audit = run_albion("ckpt audit " + log.string());
  EXPECT_EQ(audit.exit_code, 0) << audit.output;
  const std::string records = read_file(log);
  for (const char* action : {"\"save\"", "\"load\"", "\"verify\"", "\"key-rotation\"", "\"export\"",
                             "\"refusal\""}) {
    EXPECT_NE(records.find(std::string("\"action\":") + action), std::string::npos) << action << " missing:\n"
                                                                                  << records;
  }
  EXPECT_NE(read_file(dir / "elsewhere" / "run" / "audit.jsonl").find("\"refusal\""), std::string::npos);
  expect_no_key_material(records, "audit log");
  expect_no_key_material(all_output, "output");
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator(ckpt)) {
    if (entry.is_regular_file()) expect_no_key_material(read_file(entry.path()), entry.path().string());
  }
}

// `albion generate` runs a checkpoint's model in memory. By default it draws exactly the sample
// the trainer printed at that step (same weights, tokenizer, prompt, seed and sampler); options
// it cannot honour fail before anything is decrypted; every load is audited.
TEST_F(CkptCliFlow, GenerateDrawsTheTrainersOwnSample) {
  // With a nucleus cut, which generate reads back from the stored recipe too.
  const Outcome trained =
      run_albion(train_args("uk/gen", 4, /*encrypted=*/true, /*sample_tokens=*/40) + " --eval.top_p=0.5");
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::size_t at = trained.output.rfind("sample:\n");
  ASSERT_NE(at, std::string::npos) << trained.output;
  const std::string sample = trained.output.substr(at + 8);
  ASSERT_GT(sample.size(), 10u) << trained.output;

  const fs::path checkpoints = dir / "uk" / "gen" / "checkpoints";
  const fs::path log = dir / "uk" / "gen" / "audit.jsonl";
  const std::string key = " --key file:" + (dir / "kek").string();
  const Outcome generated = run_albion("generate " + checkpoints.string() + key);
  EXPECT_EQ(generated.exit_code, 0) << generated.output;
  EXPECT_NE(generated.output.find(sample), std::string::npos) << "trainer:\n" << sample << "generate:\n"
                                                              << generated.output;
  const Outcome greedy = run_albion("generate " + (checkpoints / "step-00000002").string() + key +
                                    " --prompt 'Anne\\n' --tokens 12 --top-k 0");
  EXPECT_EQ(greedy.exit_code, 0) << greedy.output;
  EXPECT_NE(greedy.output.find("Anne\n"), std::string::npos) << greedy.output;
  EXPECT_NE(greedy.output.find("generated 12 token(s)"), std::string::npos) << greedy.output;
  const std::string records = read_file(log);
  EXPECT_EQ(std::count(records.begin(), records.end(), '\n'), 2 + 2) << records;  // 2 saves, 2 loads
  EXPECT_NE(records.find("\"detail\":\"generate\""), std::string::npos) << records;

  for (const char* bad : {" --tokens 70000", " --top-k -1", " --top-p 0", " --top-p 1.5", " --temperature 0",
                          " --repetition-penalty 0", " --seed -1", " --device tpu"}) {
    const Outcome refused = run_albion("generate " + checkpoints.string() + key + bad);
    EXPECT_EQ(refused.exit_code, 2) << bad << ": " << refused.output;
    EXPECT_EQ(count_lines(refused.output), 1) << bad << ": " << refused.output;
  }
  EXPECT_EQ(read_file(log), records) << "a refused option reached the checkpoint";
  const Outcome wrong = run_albion("generate " + checkpoints.string() + " --key file:" + (dir / "wrong-kek").string());
  EXPECT_EQ(wrong.exit_code, 3) << wrong.output;
  EXPECT_EQ(count_lines(wrong.output), 1) << wrong.output;
  EXPECT_NE(read_file(log).find("\"outcome\":\"failed\""), std::string::npos);
  EXPECT_EQ(run_albion("generate " + (dir / "uk").string() + key).exit_code, 2);  // no checkpoint there
  const Outcome other_tokenizer = run_albion("generate " + checkpoints.string() + key + " --tokenizer hf:" +
                                             ALBION_SOURCE_DIR + "/tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json");
  EXPECT_EQ(other_tokenizer.exit_code, 2) << other_tokenizer.output;
  EXPECT_EQ(count_lines(other_tokenizer.output), 1) << other_tokenizer.output;
  EXPECT_NE(other_tokenizer.output.find("is not the one the model was trained with"), std::string::npos)
      << other_tokenizer.output;
  expect_no_key_material(generated.output + read_file(log), "generate");
}

namespace {

// A safetensors file's tensors by name, as raw bytes.
std::map<std::string, std::string> safetensors_tensors(const fs::path& file) {
  const std::string bytes = read_file(file);
  const std::span<const std::uint8_t> view(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  const checkpoint::SafetensorsIndex index = checkpoint::parse_safetensors_header(view, file.string());
  std::map<std::string, std::string> out;
  for (const auto& entry : index.entries) {
    out[entry.name] = bytes.substr(index.data_start + entry.begin, entry.end - entry.begin);
  }
  return out;
}

}  // namespace

// LoRA through the CLI: a run adapts an exported model (model.init + lora.rank); `generate` runs
// base + adapters and draws the trainer's own sample; `ckpt export` writes the merged model under
// the base's names, or with --format peft the adapters alone; a base that moved or changed is
// refused before anything is decrypted.
TEST_F(CkptCliFlow, LoraAdaptersGenerateAndExportMerged) {
  ASSERT_EQ(run_albion(train_args("uk/base", 2)).exit_code, 0);
  const std::string key = " --key file:" + (dir / "kek").string();
  const std::string policy = " --policy " + (dir / "policy.json").string();
  const fs::path base = dir / "uk" / "base-hf";
  ASSERT_EQ(run_albion("ckpt export " + (dir / "uk" / "base" / "checkpoints").string() + "/step-00000002" +
                       " --format safetensors --out " + base.string() + key + policy).exit_code, 0);

  const std::string lora = str_cat(" --model.init=", base.string(), " --lora.rank=4 --lora.targets=c_attn,c_fc");
  const Outcome trained = run_albion(train_args("uk/lora", 4, true, /*sample_tokens=*/40) + lora);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("LoRA rank 4, alpha 16 on 8 layers (c_attn,c_fc)"), std::string::npos) << trained.output;
  const std::size_t at = trained.output.rfind("sample:\n");
  ASSERT_NE(at, std::string::npos) << trained.output;
  const std::string sample = trained.output.substr(at + 8);

  const fs::path checkpoints = dir / "uk" / "lora" / "checkpoints";
  const Outcome generated = run_albion("generate " + checkpoints.string() + key);
  EXPECT_EQ(generated.exit_code, 0) << generated.output;
  EXPECT_NE(generated.output.find(sample), std::string::npos) << "trainer:\n" << sample << "generate:\n"
                                                              << generated.output;

  const fs::path merged = dir / "uk" / "merged-hf";
  const Outcome exported = run_albion("ckpt export " + checkpoints.string() + "/step-00000004 --format safetensors --out " +
                                      merged.string() + key + policy);
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  const auto before = safetensors_tensors(base / "model.safetensors");
  const auto after = safetensors_tensors(merged / "model.safetensors");
  std::vector<std::string> names_before, names_after;
  for (const auto& [name, bytes] : before) names_before.push_back(name);
  for (const auto& [name, bytes] : after) names_after.push_back(name);
  EXPECT_EQ(names_after, names_before);  // no lora_A / lora_B: a plain model
  for (const auto& [name, bytes] : after) {
    const bool adapted = name.ends_with("attn.c_attn.weight") || name.ends_with("mlp.c_fc.weight");
    EXPECT_EQ(bytes != before.at(name), adapted) << name;
  }
  // The merged export is an ordinary model.init.
  EXPECT_EQ(run_albion(train_args("uk/from-merged", 2) + " --model.init=" + merged.string()).exit_code, 0);

  // The base changed: refused (exit 3) before decrypting; gone: exit 2, naming it.
  const std::string original = read_file(base / "model.safetensors");
  std::string changed = original;
  changed.back() = static_cast<char>(changed.back() ^ 0x01);
  testing::write_file(base / "model.safetensors", changed);
  const Outcome tampered = run_albion("generate " + checkpoints.string() + key);
  EXPECT_EQ(tampered.exit_code, 3) << tampered.output;
  EXPECT_EQ(count_lines(tampered.output), 1) << tampered.output;
  EXPECT_NE(tampered.output.find("LoRA adapters were trained on base weights"), std::string::npos) << tampered.output;
  fs::rename(base, dir / "uk" / "moved-hf");
  const Outcome gone = run_albion("generate " + checkpoints.string() + key);
  EXPECT_EQ(gone.exit_code, 2) << gone.output;
  EXPECT_EQ(count_lines(gone.output), 1) << gone.output;
  EXPECT_NE(gone.output.find(base.string() + ", which no longer exists"), std::string::npos) << gone.output;

  // The adapters alone, as PEFT writes them, need no base; a whole model has no adapters to export.
  const fs::path adapter = dir / "uk" / "adapter";
  const Outcome peft = run_albion("ckpt export " + checkpoints.string() + "/step-00000004 --format peft --out " +
                                  adapter.string() + key + policy);
  ASSERT_EQ(peft.exit_code, 0) << peft.output;
  const auto adapters = safetensors_tensors(adapter / "adapter_model.safetensors");
  EXPECT_EQ(adapters.size(), 2u * 2u * 4u);  // A and B, c_attn and c_fc, four blocks
  for (const auto& [name, bytes] : adapters) EXPECT_TRUE(name.starts_with("base_model.model.transformer.h.")) << name;
  EXPECT_NE(read_file(adapter / "adapter_config.json").find("\"peft_type\": \"LORA\""), std::string::npos);
  const Outcome whole = run_albion("ckpt export " + (dir / "uk" / "base" / "checkpoints").string() +
                                   "/step-00000002 --format peft --out " + (dir / "uk" / "no-adapter").string() + key +
                                   policy);
  EXPECT_EQ(whole.exit_code, 2) << whole.output;
  EXPECT_NE(whole.output.find("holds a whole model"), std::string::npos) << whole.output;
  EXPECT_FALSE(fs::exists(dir / "uk" / "no-adapter"));
}

// --chat makes the prompt a user turn of a chat template and prints the answer alone; a template
// the tokenizer cannot render, or --system without --chat, is refused before decrypting.
TEST_F(CkptCliFlow, GenerateChatWrapsThePromptInTheTemplate) {
  const std::string llama3 = str_cat("hf:", ALBION_SOURCE_DIR, "/tests/runtime/tokenizers/fixtures/llama3/tokenizer.json");
  const Outcome trained =
      run_albion(train_args("uk/chat", 2, /*encrypted=*/true, /*sample_tokens=*/0, llama3, "data-llama3"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string checkpoints = (dir / "uk" / "chat" / "checkpoints").string();
  const std::string key = " --key file:" + (dir / "kek").string();

  const Outcome chat = run_albion("generate " + checkpoints + key +
                                  " --chat llama3 --system 'Be brief.' --prompt 'Who wrote Emma?' --tokens 6 --top-k 0");
  EXPECT_EQ(chat.exit_code, 0) << chat.output;
  EXPECT_EQ(chat.output.find("Who wrote Emma?"), std::string::npos) << "the prompt was printed:\n" << chat.output;
  EXPECT_EQ(chat.output.find("Be brief."), std::string::npos) << chat.output;
  EXPECT_NE(chat.output.find(" token(s) in "), std::string::npos) << chat.output;

  const Outcome no_tokens = run_albion("generate " + checkpoints + key + " --chat chatml --prompt hi");
  EXPECT_EQ(no_tokens.exit_code, 2) << no_tokens.output;
  EXPECT_NE(no_tokens.output.find("no special token <|im_start|>"), std::string::npos) << no_tokens.output;
  EXPECT_EQ(count_lines(no_tokens.output), 1) << no_tokens.output;
  // --interactive: a conversation, a line of input per user turn (blank ones skipped). Its first
  // answer is the single turn's, seed for seed, and --prompt is the same first turn as a line.
  testing::write_file(dir / "turns.txt", "Who wrote Emma?\n\nAnd Persuasion?\n");
  testing::write_file(dir / "turn.txt", "And Persuasion?\n");
  const std::string drawing = " --chat llama3 --tokens 6 --top-k 3 --seed 5";
  const std::string single =
      run_albion("generate " + checkpoints + key + drawing + " --prompt 'Who wrote Emma?' 2>/dev/null | cat").output;
  const Outcome conversation = run_albion("generate " + checkpoints + key + drawing + " --interactive < " +
                                          (dir / "turns.txt").string() + " 2>/dev/null | cat");
  EXPECT_EQ(conversation.exit_code, 0) << conversation.output;
  EXPECT_TRUE(conversation.output.starts_with(single)) << single << "\n--\n" << conversation.output;
  EXPECT_GT(conversation.output.size(), single.size() + 1) << conversation.output;
  // The second turn has the first, and its answer, in view.
  const Outcome logged = run_albion("generate " + checkpoints + key + drawing + " --interactive < " +
                                    (dir / "turns.txt").string());
  std::vector<int> in_view;
  std::vector<int> read_already;  // the KV cache kept from the turn before
  for (std::size_t at = logged.output.find(" tokens in view ("); at != std::string::npos;
       at = logged.output.find(" tokens in view (", at + 1)) {
    in_view.push_back(std::stoi(logged.output.substr(logged.output.rfind(", ", at) + 2)));
    read_already.push_back(std::stoi(logged.output.substr(at + std::string(" tokens in view (").size())));
  }
  ASSERT_EQ(in_view.size(), 2u) << logged.output;
  EXPECT_GT(in_view[1], in_view[0] + 6) << logged.output;
  EXPECT_EQ(read_already[0], 0) << logged.output;
  EXPECT_GE(read_already[1], in_view[0]) << logged.output;
  EXPECT_EQ(run_albion("generate " + checkpoints + key + drawing + " --interactive --prompt 'Who wrote Emma?' < " +
                       (dir / "turn.txt").string() + " 2>/dev/null | cat")
                .output,
            conversation.output);

  for (const char* bad : {" --chat llama2 --prompt hi", " --system hi --prompt hi", " --chat llama3",
                          " --interactive --prompt hi"}) {
    const Outcome refused = run_albion("generate " + checkpoints + key + bad);
    EXPECT_EQ(refused.exit_code, 2) << bad << ": " << refused.output;
    EXPECT_EQ(count_lines(refused.output), 1) << bad << ": " << refused.output;
  }
}

// A model fine-tuned on chat data records the template its data was rendered with; generate says
// when it is prompted otherwise.
TEST_F(CkptCliFlow, GenerateNamesTheChatTemplateTheModelWasTrainedIn) {
  const std::string llama3 = str_cat("hf:", ALBION_SOURCE_DIR, "/tests/runtime/tokenizers/fixtures/llama3/tokenizer.json");
  std::string chats;
  for (int i = 0; i < 40; ++i) {
    chats += str_cat(R"({"prompt": "What is )", i, R"( plus one?", "completion": "It is )", i + 1, R"(."})", "\n");
  }
  testing::write_file(dir / "chats.jsonl", chats);
  const Outcome prepared = run_albion("data prepare --format chat --chat-template llama3 --tokenizer " + llama3 +
                                      " --input " + (dir / "chats.jsonl").string() + " --output " +
                                      (dir / "chats").string());
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  const Outcome trained = run_albion(train_args("uk/sft", 2, /*encrypted=*/true, /*sample_tokens=*/0, llama3, "chats"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string generate = "generate " + (dir / "uk" / "sft" / "checkpoints").string() + " --key file:" +
                               (dir / "kek").string() + " --tokens 2 --top-k 0 --prompt 'What is 7 plus one?'";

  const Outcome plain = run_albion(generate);
  EXPECT_EQ(plain.exit_code, 0) << plain.output;
  EXPECT_NE(plain.output.find("fine-tuned on chat data in the llama3 template; pass --chat llama3"),
            std::string::npos) << plain.output;
  const Outcome chat = run_albion(generate + " --chat llama3");
  EXPECT_EQ(chat.exit_code, 0) << chat.output;
  EXPECT_EQ(chat.output.find("fine-tuned"), std::string::npos) << chat.output;

  // Its export holds the template as transformers reads it, its end-of-turn token as eos (and its
  // id among those that end a text): generate of the directory names the template too, and
  // answers as the checkpoint does.
  const fs::path exported = dir / "uk" / "sft-hf";
  const std::string step = (dir / "uk" / "sft" / "checkpoints" / "step-00000002").string();
  const Outcome exporting = run_albion("ckpt export " + step + " --out " + exported.string() + " --key file:" +
                                       (dir / "kek").string() + " --policy " + (dir / "policy.json").string());
  ASSERT_EQ(exporting.exit_code, 0) << exporting.output;
  const nlohmann::json tokenizer_config = nlohmann::json::parse(read_file(exported / "tokenizer_config.json"));
  EXPECT_EQ(tokenizer_config["eos_token"], "<|eot_id|>");
  EXPECT_NE(tokenizer_config["chat_template"].get<std::string>().find("<|start_header_id|>"), std::string::npos);
  const nlohmann::json vocab = nlohmann::json::parse(read_file(exported / "tokenizer.json"))["added_tokens"];
  const auto eot = std::find_if(vocab.begin(), vocab.end(), [](const auto& t) { return t["content"] == "<|eot_id|>"; });
  ASSERT_NE(eot, vocab.end());
  const nlohmann::json generation = nlohmann::json::parse(read_file(exported / "generation_config.json"));
  EXPECT_EQ(generation["eos_token_id"][0], (*eot)["id"]) << generation.dump();
  const Outcome exported_plain = run_albion("generate " + exported.string() + " --tokens 2 --top-k 0 --prompt hi");
  EXPECT_NE(exported_plain.output.find("fine-tuned on chat data in the llama3 template; pass --chat llama3"),
            std::string::npos)
      << exported_plain.output;
  const std::string answer = " --chat llama3 --tokens 2 --top-k 0 --prompt 'What is 7 plus one?' 2>/dev/null | cat";
  EXPECT_EQ(run_albion("generate " + exported.string() + answer).output,
            run_albion("generate " + (dir / "uk" / "sft" / "checkpoints").string() + " --key file:" +
                       (dir / "kek").string() + answer)
                .output);

  // `eval` scores what the loss mask trains on: the answers, not the prompts or the template.
  const Outcome scored = run_albion("eval " + (dir / "uk" / "sft" / "checkpoints").string() + " --key file:" +
                                    (dir / "kek").string() + " --dataset " + (dir / "chats").string() +
                                    " --split train --json");
  ASSERT_EQ(scored.exit_code, 0) << scored.output;
  const std::optional<nlohmann::json> printed = printed_json(scored.output);
  ASSERT_TRUE(printed.has_value()) << scored.output;
  const nlohmann::json& result = *printed;
  EXPECT_GT(result["scored_tokens"].get<std::int64_t>(), 0) << result.dump();
  EXPECT_LT(result["scored_tokens"].get<std::int64_t>(), result["windows"].get<std::int64_t>() * 32 / 2)
      << result.dump();
}

// `ckpt export` writes a whole model directory: beside the weights, the files of the tokenizer the
// run trained with, under transformers' names, and generation_config.json with the recipe's
// sampling. `generate` and `eval` of that directory then draw and score exactly as of the
// checkpoint, with no key and no --tokenizer (eval also on packed documents); the directory's
// generation_config.json sets the sampling and the end of the text; a tokenizer whose files
// changed after training is left out rather than exported wrong.
TEST_F(CkptCliFlow, AnExportHoldsItsTokenizerAndRunsAsItsCheckpoint) {
  const std::string fixtures = str_cat(ALBION_SOURCE_DIR, "/tests/runtime/tokenizers/fixtures");
  fs::copy(fixtures + "/gpt2", dir / "gpt2-tokenizer");
  const std::string key = " --key file:" + (dir / "kek").string();
  const std::string policy = " --policy " + (dir / "policy.json").string();
  struct Case {
    std::string name, tokenizer;
    std::vector<std::string> files;
  };
  for (const Case& c : {Case{"hf", "hf:" + fixtures + "/llama3/tokenizer.json", {"tokenizer.json"}},
                        Case{"gpt2", "gpt2:" + (dir / "gpt2-tokenizer").string(), {"vocab.json", "merges.txt"}},
                        Case{"spm", "sentencepiece:" + fixtures + "/sentencepiece/spm.model", {"tokenizer.model"}}}) {
    const Outcome trained = run_albion(train_args("uk/" + c.name, 2, true, 0, c.tokenizer, "data-" + c.name));
    ASSERT_EQ(trained.exit_code, 0) << c.name << ": " << trained.output;
    const std::string checkpoints = (dir / "uk" / c.name / "checkpoints").string();
    const std::string exported = (dir / "uk" / (c.name + "-hf")).string();
    const Outcome exporting =
        run_albion("ckpt export " + checkpoints + "/step-00000002 --out " + exported + key + policy);
    ASSERT_EQ(exporting.exit_code, 0) << c.name << ": " << exporting.output;
    for (const std::string& file : c.files) {
      EXPECT_TRUE(fs::exists(fs::path(exported) / file)) << c.name << ": " << file;
      EXPECT_NE(exporting.output.find(", " + file), std::string::npos) << c.name << ": " << exporting.output;
    }

    // stdout only: the prompt and what was drawn.
    // The recipe's sampling, which the export's generation_config.json carries.
    const std::string drawing = " --prompt 'Anne was' --tokens 16 --seed 7 2>/dev/null | cat";
    const Outcome of_checkpoint = run_albion("generate " + checkpoints + key + drawing);
    ASSERT_EQ(of_checkpoint.exit_code, 0) << c.name;
    ASSERT_GT(of_checkpoint.output.size(), 9u) << c.name;
    EXPECT_EQ(run_albion("generate " + exported + drawing).output, of_checkpoint.output) << c.name;
    // Scored on the stream's windows, and on whole documents attended within each.
    const auto score = [&](const std::string& model, const std::string& options) {
      const std::optional<nlohmann::json> result =
          printed_json(run_albion("eval " + model + " --dataset " + (dir / ("data-" + c.name)).string() +
                                  " --seq-len 32 --micro-batch 2 --json" + options + " 2>/dev/null | cat")
                           .output);
      return result.value_or(nlohmann::json::object());
    };
    const nlohmann::json stream = score(checkpoints + key, "");
    ASSERT_TRUE(stream.contains("loss")) << c.name;
    EXPECT_EQ(score(exported, "")["loss"], stream["loss"]) << c.name;
    const std::string packed = " --packing documents --document-masking true";
    const nlohmann::json documents = score(checkpoints + key, packed);
    EXPECT_EQ(documents["packing"], "documents") << documents.dump();
    EXPECT_EQ(documents["document_masking"], true) << documents.dump();
    EXPECT_EQ(score(exported, packed)["loss"], documents["loss"]) << c.name;
    EXPECT_NE(documents["loss"], stream["loss"]) << c.name;

    const Outcome other = run_albion("generate " + exported + " --tokenizer byte --prompt hi");
    EXPECT_EQ(other.exit_code, 2) << c.name << ": " << other.output;
    EXPECT_EQ(count_lines(other.output), 1) << c.name << ": " << other.output;
    EXPECT_NE(other.output.find("generate: tokenizer byte is not the model's"), std::string::npos) << other.output;
  }

  // A chat prompt renders alike. The directory's generation_config.json sets the sampling (as
  // transformers reads it) where no option does, and its eos_token_id ends the text: here ',',
  // which the greedy text draws first.
  const std::string exported = (dir / "uk" / "hf-hf").string();
  const std::string authors = R"({"do_sample": true, "top_k": 5, "top_p": 0.5, "temperature": 0.9})";
  testing::write_file(fs::path(exported) / "generation_config.json", authors);
  const std::string prompt = " --prompt 'Anne was' --tokens 16 --seed 7";
  const Outcome as_authors = run_albion("generate " + exported + prompt + " 2>/dev/null | cat");
  EXPECT_EQ(as_authors.output, run_albion("generate " + (dir / "uk" / "hf" / "checkpoints").string() + key + prompt +
                                          " --top-k 5 --top-p 0.5 --temperature 0.9 2>/dev/null | cat")
                                   .output);
  EXPECT_NE(as_authors.output, run_albion("generate " + exported + prompt + " --top-p 1 2>/dev/null | cat").output)
      << "the test wants a text the nucleus changes";
  // Greedy with transformers' repetition penalty; what Albion does not apply is named.
  testing::write_file(fs::path(exported) / "generation_config.json",
                      R"({"do_sample": false, "repetition_penalty": 10, "num_beams": 4, "min_p": null})");
  const Outcome penalised = run_albion("generate " + exported + " --prompt Anne --tokens 8");
  EXPECT_NE(penalised.output.find("generation_config.json sets num_beams, which Albion's sampler does not apply"),
            std::string::npos)
      << penalised.output;
  const std::string penalised_text =
      run_albion("generate " + exported + " --prompt Anne --tokens 8 2>/dev/null | cat").output;
  EXPECT_EQ(penalised_text, run_albion("generate " + (dir / "uk" / "hf" / "checkpoints").string() + key +
                                       " --prompt Anne --tokens 8 --top-k 0 --repetition-penalty 10 2>/dev/null | cat")
                                .output);
  EXPECT_NE(penalised_text, "Anne,,,,,,,,\n") << "the test wants a penalty that changes the text";
  testing::write_file(fs::path(exported) / "generation_config.json", R"({"top_p": 2})");
  const Outcome wrong = run_albion("generate " + exported + " --prompt Anne");
  EXPECT_EQ(wrong.exit_code, 2) << wrong.output;
  EXPECT_NE(wrong.output.find("generation_config.json: top_p must be in (0, 1], got 2"), std::string::npos)
      << wrong.output;
  fs::remove(fs::path(exported) / "generation_config.json");
  const std::string chat = " --chat llama3 --prompt 'Who wrote Emma?' --tokens 12 --top-k 0 2>/dev/null | cat";
  EXPECT_EQ(run_albion("generate " + exported + chat).output,
            run_albion("generate " + (dir / "uk" / "hf" / "checkpoints").string() + key + chat).output);
  const Outcome greedy = run_albion("generate " + exported + " --prompt Anne --tokens 8 --top-k 0 2>/dev/null | cat");
  ASSERT_EQ(greedy.output, "Anne,,,,,,,,\n") << "the test wants a text that draws ',' first";
  const nlohmann::json vocab =
      nlohmann::json::parse(read_file(fs::path(exported) / "tokenizer.json"))["model"]["vocab"];
  testing::write_file(fs::path(exported) / "generation_config.json",
                      str_cat(R"({"eos_token_id": [7, )", vocab.at(",").get<int>(), "]}"));
  const Outcome ended = run_albion("generate " + exported + " --prompt Anne --tokens 8 --top-k 0");
  EXPECT_EQ(ended.exit_code, 0) << ended.output;
  EXPECT_EQ(ended.output.find("Anne,"), std::string::npos) << ended.output;
  EXPECT_NE(ended.output.find("generated 1 token(s)"), std::string::npos) << ended.output;

  // Tokenizer files changed since training: not exported, and the directory says it has none.
  std::string merges = read_file(dir / "gpt2-tokenizer" / "merges.txt");
  merges.erase(merges.find_last_of('\n', merges.size() - 2) + 1);  // the last merge
  testing::write_file(dir / "gpt2-tokenizer" / "merges.txt", merges);
  const std::string changed = (dir / "uk" / "gpt2-changed").string();
  const Outcome exporting = run_albion("ckpt export " + (dir / "uk" / "gpt2" / "checkpoints").string() +
                                       "/step-00000002 --out " + changed + key + policy);
  ASSERT_EQ(exporting.exit_code, 0) << exporting.output;
  EXPECT_NE(exporting.output.find("is not exported (its files have changed)"), std::string::npos) << exporting.output;
  EXPECT_FALSE(fs::exists(fs::path(changed) / "vocab.json"));
  const Outcome none = run_albion("generate " + changed + " --prompt hi");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("holds no tokenizer (tokenizer.json, vocab.json and merges.txt, or tokenizer.model); "
                             "pass --tokenizer SPEC"),
            std::string::npos)
      << none.output;
}

// The last val_loss a run's metrics.jsonl records (0 if none).
double last_val_loss(const fs::path& metrics_jsonl) {
  double val_loss = 0;
  std::istringstream metrics(read_file(metrics_jsonl));
  for (std::string line; std::getline(metrics, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.contains("val_loss")) val_loss = record["val_loss"].get<double>();
  }
  return val_loss;
}

// `albion eval` scores a checkpoint's model on a dataset. Over the batches the trainer's validation
// reads it gives the trainer's val_loss; over the whole split its loss does not depend on the
// batch size (the windows after the last full batch are scored too); options it cannot honour
// fail before anything is decrypted, a dataset of another tokenizer after; loads are audited.
TEST_F(CkptCliFlow, EvalScoresADatasetAsTheTrainersValidationDoes) {
  std::string args = train_args("uk/eval", 4);
  const std::string no_eval = "--eval.interval=0";
  args.replace(args.find(no_eval), no_eval.size(), "--eval.interval=4 --eval.batches=3");
  const Outcome trained = run_albion(args);
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const double val_loss = last_val_loss(dir / "uk" / "eval" / "metrics.jsonl");
  ASSERT_GT(val_loss, 0);

  const fs::path log = dir / "uk" / "eval" / "audit.jsonl";
  const std::string eval_model = "eval " + (dir / "uk" / "eval" / "checkpoints").string() + " --key file:" +
                                 (dir / "kek").string();
  const std::string eval = eval_model + " --dataset " + (dir / "data").string();
  // The JSON object printed on stdout (progress lines go to stderr).
  auto scored = [&](const std::string& options) {
    const Outcome run = run_albion(eval + " --json" + options);
    EXPECT_EQ(run.exit_code, 0) << run.output;
    return printed_json(run.output).value_or(nlohmann::json::object());
  };
  const nlohmann::json as_validation = scored(" --batches 3");
  EXPECT_NEAR(as_validation.value("loss", 0.0), val_loss, 1e-6 * val_loss) << as_validation.dump();
  EXPECT_EQ(as_validation.value("windows", 0), 3 * 2);  // train.micro_batch = 2

  const nlohmann::json whole = scored("");
  const nlohmann::json one_at_a_time = scored(" --micro-batch 1");
  EXPECT_GT(whole.value("windows", 0), 6);
  EXPECT_EQ(whole.value("windows", 0) % 2, 1) << "the test wants a window left over after the last full batch";
  EXPECT_EQ(whole.value("windows", 0), one_at_a_time.value("windows", -1));
  EXPECT_EQ(whole.value("scored_tokens", 0), 32 * whole.value("windows", 0));
  EXPECT_NEAR(whole.value("loss", 0.0), one_at_a_time.value("loss", 1.0), 1e-6);
  const Outcome readable = run_albion(eval);
  EXPECT_NE(readable.output.find("val: loss "), std::string::npos) << readable.output;
  EXPECT_NE(readable.output.find(", perplexity "), std::string::npos) << readable.output;
  const std::string records = read_file(log);
  EXPECT_EQ(std::count(records.begin(), records.end(), '\n'), 2 + 4) << records;  // 2 saves, 4 loads
  EXPECT_NE(records.find("\"detail\":\"eval\""), std::string::npos) << records;

  for (const std::string& bad : {eval + " --split test", eval + " --batches 0", eval + " --micro-batch 0",
                                 eval + " --seq-len -1", eval + " --device tpu", eval_model,
                                 eval_model + " --dataset /no/such/dataset"}) {
    const Outcome refused = run_albion(bad);
    EXPECT_EQ(refused.exit_code, 2) << bad << ": " << refused.output;
    EXPECT_EQ(count_lines(refused.output), 1) << bad << ": " << refused.output;
  }
  EXPECT_EQ(read_file(log), records) << "a refused option reached the checkpoint";
  const Outcome prepared = run_albion(str_cat("data prepare --tokenizer hf:", ALBION_SOURCE_DIR,
                                              "/tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json --input ",
                                              ALBION_SOURCE_DIR, "/recipes/corpus/austen/persuasion.txt --output ",
                                              (dir / "gpt2-data").string(), " --val-fraction 0.1 --text-document-bytes 4096"));
  ASSERT_EQ(prepared.exit_code, 0) << prepared.output;
  const Outcome other_tokenizer = run_albion(eval_model + " --dataset " + (dir / "gpt2-data").string());
  EXPECT_EQ(other_tokenizer.exit_code, 2) << other_tokenizer.output;
  EXPECT_NE(other_tokenizer.output.find("not the one the model was trained with"), std::string::npos)
      << other_tokenizer.output;
  // An encrypted held-out set: read with --data-key, refused without it (2) or with another key (3).
  const fs::path sealed = dir / "uk" / "sealed-data";
  const Outcome sealed_prepared =
      run_albion(str_cat("data prepare --tokenizer byte --input ", ALBION_SOURCE_DIR,
                         "/recipes/corpus/austen/persuasion.txt --output ", sealed.string(),
                         " --val-fraction 0.1 --text-document-bytes 8192 --encrypt file:", (dir / "kek").string(),
                         " --policy ", (dir / "policy.json").string()));
  ASSERT_EQ(sealed_prepared.exit_code, 0) << sealed_prepared.output;
  const Outcome sealed_scored =
      run_albion(eval_model + " --dataset " + sealed.string() + " --data-key file:" + (dir / "kek").string());
  EXPECT_EQ(sealed_scored.exit_code, 0) << sealed_scored.output;
  EXPECT_NE(sealed_scored.output.find("val: loss "), std::string::npos) << sealed_scored.output;
  EXPECT_EQ(run_albion(eval_model + " --dataset " + sealed.string()).exit_code, 2);
  EXPECT_EQ(run_albion(eval_model + " --dataset " + sealed.string() + " --data-key file:" + (dir / "new-kek").string())
                .exit_code,
            3);
  expect_no_key_material(readable.output + sealed_scored.output + read_file(log), "eval");

  // --every: each committed checkpoint (steps 2 and 4) as eval scores it alone, oldest first, and
  // the best named; one audited load each. A step-N directory is one model, refused.
  const std::string records_before = read_file(log);
  const Outcome every = run_albion(eval + " --every --json");
  ASSERT_EQ(every.exit_code, 0) << every.output;
  const std::vector<nlohmann::json> lines = printed_json_lines(every.output);
  ASSERT_EQ(lines.size(), 2u) << every.output;
  EXPECT_EQ(lines[0]["step"], 2);
  EXPECT_EQ(lines[1]["step"], 4);
  EXPECT_EQ(lines[1]["loss"], whole["loss"]);
  const nlohmann::json second = printed_json(run_albion("eval " + (dir / "uk" / "eval" / "checkpoints").string() +
                                                        "/step-00000002 --key file:" + (dir / "kek").string() +
                                                        " --dataset " + (dir / "data").string() + " --json")
                                                 .output)
                                    .value_or(nlohmann::json::object());
  EXPECT_EQ(lines[0]["loss"], second["loss"]);
  const int best = lines[0]["loss"].get<double>() < lines[1]["loss"].get<double>() ? 2 : 4;
  EXPECT_NE(every.output.find(str_cat("is step ", best, "'s, of 2 checkpoint(s)")), std::string::npos) << every.output;
  const std::string records_after = read_file(log);
  EXPECT_EQ(std::count(records_after.begin(), records_after.end(), '\n') -
                std::count(records_before.begin(), records_before.end(), '\n'),
            3);  // --every's two loads, and step 2's alone
  const Outcome one_model = run_albion("eval " + (dir / "uk" / "eval" / "checkpoints").string() +
                                       "/step-00000004 --every --dataset " + (dir / "data").string());
  EXPECT_EQ(one_model.exit_code, 2) << one_model.output;
  EXPECT_NE(one_model.output.find("--every scores each checkpoint of a checkpoint directory"), std::string::npos)
      << one_model.output;
}


// eval --choices: multiple-choice questions (HellaSwag's field names) answered by the checkpoint's
// model in the tokenizer it records, each load audited; --limit, --every naming the highest
// acc_norm; a bad file, another tokenizer and options that score a dataset refused in one line.
TEST_F(CkptCliFlow, EvalAnswersMultipleChoiceQuestions) {
  const Outcome trained = run_albion(train_args("uk/choices", 4));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const fs::path questions = dir / "questions.jsonl";
  std::string lines_of_questions;
  for (int i = 0; i < 5; ++i) {
    lines_of_questions += str_cat(R"({"ctx": "Anne Elliot )", i,
                                  R"(", "endings": ["was", "had been", "sat quietly"], "label": )", i % 3, "}\n");
  }
  testing::write_file(questions, lines_of_questions);
  const std::string checkpoints = (dir / "uk" / "choices" / "checkpoints").string();
  const std::string eval = "eval " + checkpoints + " --key file:" + (dir / "kek").string();
  const std::string answer = eval + " --choices " + questions.string();
  auto answered = [&](const std::string& options) {
    const Outcome run = run_albion(answer + " --json" + options);
    EXPECT_EQ(run.exit_code, 0) << run.output;
    return printed_json(run.output).value_or(nlohmann::json::object());
  };
  const nlohmann::json all = answered("");
  EXPECT_EQ(all["questions"], 5) << all.dump();
  EXPECT_EQ(all["step"], 4) << all.dump();
  for (const char* metric : {"acc", "acc_norm"}) {
    const double value = all.value(metric, -1.0);
    EXPECT_TRUE(value >= 0 && value <= 1 && std::round(value * 5) == value * 5) << metric << ": " << all.dump();
  }
  EXPECT_EQ(answered(" --limit 2")["questions"], 2);
  const Outcome readable = run_albion(answer);
  EXPECT_NE(readable.output.find("choices: acc "), std::string::npos) << readable.output;
  EXPECT_NE(readable.output.find("/5), acc_norm "), std::string::npos) << readable.output;

  const Outcome every = run_albion(answer + " --every --json");
  ASSERT_EQ(every.exit_code, 0) << every.output;
  const std::vector<nlohmann::json> lines = printed_json_lines(every.output);
  ASSERT_EQ(lines.size(), 2u) << every.output;
  EXPECT_EQ(lines[1], all);
  const int best = lines[0]["acc_norm"].get<double>() >= lines[1]["acc_norm"].get<double>() ? 2 : 4;
  EXPECT_NE(every.output.find(str_cat("the highest acc_norm, ", lines[best / 2 - 1]["acc_norm"].get<double>(),
                                      ", is step ", best, "'s")),
            std::string::npos)
      << every.output;
  const std::string records = read_file(dir / "uk" / "choices" / "audit.jsonl");
  EXPECT_EQ(std::count(records.begin(), records.end(), '\n'), 2 + 5) << records;  // 2 saves, 5 loads

  const fs::path bad = dir / "bad-questions.jsonl";
  testing::write_file(bad, R"({"ctx": "private text", "endings": ["only one"], "label": 0})" "\n");
  const std::string gpt2 = str_cat(ALBION_SOURCE_DIR, "/tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json");
  for (const std::string& refused_command :
       {eval + " --choices " + bad.string(), eval + " --choices /no/such/questions.jsonl",
        answer + " --dataset " + (dir / "data").string(), answer + " --batches 3", answer + " --limit 0",
        eval + " --dataset " + (dir / "data").string() + " --limit 2", answer + " --tokenizer hf:" + gpt2}) {
    const Outcome refused = run_albion(refused_command);
    EXPECT_EQ(refused.exit_code, 2) << refused_command << ": " << refused.output;
    EXPECT_EQ(count_lines(refused.output), 1) << refused_command << ": " << refused.output;
    EXPECT_EQ(refused.output.find("private text"), std::string::npos) << refused.output;
  }
}

// On a GPU (suite CkptCliFlowCuda, label gpu): the trainer validates and samples in the training's
// precision (bf16 autocast), as `albion eval` scores the checkpoint and `albion generate` draws
// from it (Note [Inference in the training's precision]), so they agree there too.
class CkptCliFlowCuda : public CkptCliFlow {
 protected:
  // train_args on CUDA, with `from` replaced by `to` where given.
  std::string cuda_train_args(const std::string& run, int sample_tokens, const std::string& from = "",
                              const std::string& to = "") {
    std::string args = train_args(run, 4, /*encrypted=*/true, sample_tokens);
    const std::string cpu = "--run.device=cpu";
    args.replace(args.find(cpu), cpu.size(), "--run.device=cuda");
    if (!from.empty()) args.replace(args.find(from), from.size(), to);
    return args;
  }
};

TEST_F(CkptCliFlowCuda, GenerateOnAGpuDrawsTheTrainersOwnSample) {
  if (std::system("nvidia-smi -L > /dev/null 2>&1") != 0) GTEST_SKIP() << "no CUDA device on this machine";
  const Outcome trained = run_albion(cuda_train_args("uk/gen-cuda", 40));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  ASSERT_NE(trained.output.find("bf16 autocast"), std::string::npos) << trained.output;
  const std::size_t at = trained.output.rfind("sample:\n");
  ASSERT_NE(at, std::string::npos) << trained.output;
  const std::string sample = trained.output.substr(at + 8);
  ASSERT_GT(sample.size(), 10u) << trained.output;
  const Outcome generated = run_albion("generate " + (dir / "uk" / "gen-cuda" / "checkpoints").string() +
                                       " --key file:" + (dir / "kek").string() + " --device cuda");
  ASSERT_EQ(generated.exit_code, 0) << generated.output;
  EXPECT_NE(generated.output.find("(bf16 autocast)"), std::string::npos) << generated.output;
  EXPECT_NE(generated.output.find(sample), std::string::npos) << "trainer:\n" << sample << "generate:\n"
                                                              << generated.output;
}

TEST_F(CkptCliFlowCuda, EvalOnAGpuScoresAsTheTrainersValidationDoes) {
  if (std::system("nvidia-smi -L > /dev/null 2>&1") != 0) GTEST_SKIP() << "no CUDA device on this machine";
  const Outcome trained =
      run_albion(cuda_train_args("uk/eval-cuda", 0, "--eval.interval=0", "--eval.interval=4 --eval.batches=3"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  ASSERT_NE(trained.output.find("bf16 autocast"), std::string::npos) << trained.output;
  const double val_loss = last_val_loss(dir / "uk" / "eval-cuda" / "metrics.jsonl");
  ASSERT_GT(val_loss, 0);
  const Outcome run = run_albion("eval " + (dir / "uk" / "eval-cuda" / "checkpoints").string() + " --key file:" +
                                 (dir / "kek").string() + " --dataset " + (dir / "data").string() +
                                 " --device cuda --batches 3 --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const std::optional<nlohmann::json> scored = printed_json(run.output);
  ASSERT_TRUE(scored.has_value()) << run.output;
  EXPECT_NEAR(scored->value("loss", 0.0), val_loss, 1e-5 * val_loss) << scored->dump();
}

}  // namespace
}  // namespace albion::checkpoint
