// File: tests/checkpoint/format/checkpoint_crash_test.cpp
// Crash safety of the commit protocol (Note [Commit protocol] in checkpoint_writer.h), with real
// processes and SIGKILL. A child process resumes from the newest committed checkpoint and saves
// one checkpoint per step, reporting each committed step through a pipe; the parent kills it at a
// random moment (or the child kills itself at a chosen phase of the commit: manifest, rename,
// latest, retention). After every kill the parent checks what a resuming run would see:
//   - the newest committed checkpoint is at least the last step the child reported committed
//     (never lost, never silently from scratch), and nothing uncommitted is ever listed;
//   - it authenticates completely and holds exactly that step's state.
// Then the next child resumes from it. Every trial, the checkpoints are encrypted and retention
// (keep = 2) runs on every save.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/format/checkpoint_writer.h"
#include "checkpoint/keys/key_file.h"
#include "tests/checkpoint/temp_dir.h"

namespace albion::checkpoint {
namespace {

namespace fs = std::filesystem;

// The state saved at `step`: every value depends on the step, so a checkpoint of the wrong step,
// or a mix of two, is caught.
std::vector<float> state_at(std::int64_t step, std::size_t size, float salt) {
  std::vector<float> values(size);
  for (std::size_t i = 0; i < size; ++i) values[i] = static_cast<float>(step) * 1000.0f + salt + static_cast<float>(i);
  return values;
}

constexpr std::size_t kWeights = 50'000;  // 200 KB: about 13 chunks of 16 KiB
constexpr std::size_t kMoments = 3'000;

std::int64_t resume_step(const fs::path& directory, const KeyProvider& key) {
  std::optional<CommittedCheckpoint> newest = newest_checkpoint(directory);
  if (!newest) return 0;
  CheckpointReader reader(newest->path, &key);
  reader.verify_all();
  return reader.manifest().header.step;
}

// The child: resume, then save steps until killed. `kill_phase` (or "") makes it SIGKILL itself
// when the commit of its first save reaches that phase.
[[noreturn]] void run_child(const fs::path& directory, const fs::path& key_file, int report_fd,
                            const std::string& kill_phase) {
  try {
    const std::unique_ptr<KeyProvider> key = open_key_provider("file:" + key_file.string());
    std::int64_t step = resume_step(directory, *key);
    SingleProcessGroup group;
    CheckpointOptions options;
    options.directory = directory;
    options.key = key.get();
    options.keep = 2;
    options.shard.chunk_bytes = 16 << 10;
    options.on_phase = [&](const char* phase) {
      if (!kill_phase.empty() && kill_phase == phase) ::raise(SIGKILL);
    };
    CheckpointWriter writer(options, group);
    const char ready = 'r';
    if (::write(report_fd, &ready, 1) != 1) ::_exit(3);
    for (;;) {
      ++step;
      const std::vector<float> weights = state_at(step, kWeights, 0.25f);
      const std::vector<float> moments = state_at(step, kMoments, 0.5f);
      writer.save({step,
                   {{"model.w", "F32", {static_cast<std::int64_t>(kWeights)}, 0, static_cast<std::int64_t>(kWeights),
                     {reinterpret_cast<const std::uint8_t*>(weights.data()), kWeights * 4}},
                    {"optim.m", "F32", {static_cast<std::int64_t>(kMoments)}, 0, static_cast<std::int64_t>(kMoments),
                     {reinterpret_cast<const std::uint8_t*>(moments.data()), kMoments * 4}}},
                   "",
                   "{}",
                   1});
      const std::int64_t committed = step;
      if (::write(report_fd, &committed, sizeof committed) != sizeof committed) ::_exit(3);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "child failed: %s\n", error.what());
    ::_exit(2);
  }
}

struct Trial {
  std::int64_t last_reported = 0;
  bool killed = false;
};

class CheckpointCrashTest : public ::testing::Test {
 protected:
  void SetUp() override { generate_key_file(dir / "kek", KeyFileOverwrite::kRefuse); }

  // Starts a child, kills it after `delay` (or lets it kill itself at `phase`, or kills it after
  // `commits` reports), returns what it reported.
  Trial run_trial(std::chrono::microseconds delay, const std::string& phase, int commits = 0) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      run_child(dir / "checkpoints", dir / "kek", fds[1], phase);
    }
    ::close(fds[1]);
    char ready = 0;
    EXPECT_EQ(::read(fds[0], &ready, 1), 1) << "child did not start";
    Trial trial;
    std::int64_t step = 0;
    if (commits > 0) {
      for (int i = 0; i < commits && ::read(fds[0], &step, sizeof step) == sizeof step; ++i) trial.last_reported = step;
      ::kill(pid, SIGKILL);
    } else if (phase.empty()) {
      std::this_thread::sleep_for(delay);
      ::kill(pid, SIGKILL);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    trial.killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    while (::read(fds[0], &step, sizeof step) == sizeof step) trial.last_reported = step;
    ::close(fds[0]);
    return trial;
  }

  // What a resuming run sees must be committed, complete, and no older than the last commit.
  void check_after_kill(const Trial& trial, std::int64_t committed_before, const std::string& label) {
    ASSERT_TRUE(trial.killed) << label << ": the child exited instead of being killed";
    const std::unique_ptr<KeyProvider> key = open_key_provider("file:" + (dir / "kek").string());
    const std::int64_t floor = std::max(trial.last_reported, committed_before);
    std::optional<CommittedCheckpoint> newest = newest_checkpoint(dir / "checkpoints");
    if (floor == 0 && !newest) return;
    ASSERT_TRUE(newest.has_value()) << label << ": step " << floor << " was committed and is gone";
    EXPECT_GE(newest->step, floor) << label;
    // At most one commit can have happened after the last report (killed before it was reported).
    EXPECT_LE(newest->step, floor + 1) << label;
    CheckpointReader reader(newest->path, key.get());
    reader.verify_all();
    std::vector<float> weights(kWeights);
    reader.read("model.w", 0, kWeights, {reinterpret_cast<std::uint8_t*>(weights.data()), kWeights * 4});
    EXPECT_EQ(weights, state_at(newest->step, kWeights, 0.25f)) << label;
    std::vector<float> moments(kMoments);
    reader.read("optim.m", 0, kMoments, {reinterpret_cast<std::uint8_t*>(moments.data()), kMoments * 4});
    EXPECT_EQ(moments, state_at(newest->step, kMoments, 0.5f)) << label;
    for (const CommittedCheckpoint& c : list_checkpoints(dir / "checkpoints")) {
      EXPECT_TRUE(fs::exists(c.path / "manifest.json")) << label << ": " << c.path << " listed without a manifest";
    }
  }

  testing::TempDir dir;
};

TEST_F(CheckpointCrashTest, KillAtEachPhaseOfTheCommit) {
  std::int64_t committed = 0;
  for (const char* phase : {"manifest", "rename", "latest", "retention", "done"}) {
    for (int repeat = 0; repeat < 3; ++repeat) {
      const Trial trial = run_trial({}, phase);
      check_after_kill(trial, committed, phase);
      if (::testing::Test::HasFailure()) return;
      committed = newest_checkpoint(dir / "checkpoints") ? newest_checkpoint(dir / "checkpoints")->step : 0;
    }
  }
}

TEST_F(CheckpointCrashTest, HundredKillsAtRandomMoments) {
  // How long one save takes on this machine now (fsync latency varies widely, and with what else
  // the machine runs), measured again every 10 trials, so the kills land anywhere in the first few
  // saves of a child whatever the disk and its load.
  std::int64_t committed = 0;
  std::chrono::steady_clock::duration per_save{};
  auto calibrate = [&] {
    const auto start = std::chrono::steady_clock::now();
    const Trial calibration = run_trial({}, "", /*commits=*/5);
    per_save = (std::chrono::steady_clock::now() - start) / 5;
    EXPECT_GE(calibration.last_reported, committed + 5);
    committed = newest_checkpoint(dir / "checkpoints")->step;  // a sixth save may have landed before the kill
    const auto longest = 3 * std::chrono::duration_cast<std::chrono::microseconds>(per_save).count();
    return std::uniform_int_distribution<std::int64_t>(0, std::max<std::int64_t>(1000, longest));
  };
  std::mt19937 random(20261122);
  std::uniform_int_distribution<std::int64_t> delay_us;
  int with_progress = 0;
  for (int trial_index = 0; trial_index < 100; ++trial_index) {
    if (trial_index % 10 == 0) delay_us = calibrate();
    const Trial trial = run_trial(std::chrono::microseconds(delay_us(random)), "");
    check_after_kill(trial, committed, "random trial " + std::to_string(trial_index));
    if (::testing::Test::HasFailure()) return;
    const std::int64_t newest = newest_checkpoint(dir / "checkpoints") ? newest_checkpoint(dir / "checkpoints")->step : 0;
    with_progress += newest > committed;
    committed = newest;
  }
  // The kills must have spread over the saves: many trials commit something before their kill,
  // many do not, and the run made progress across the trials (the calibrations' own saves aside).
  EXPECT_GT(with_progress, 25);
  EXPECT_LT(with_progress, 100);
  std::printf("100 kills (a save took %.1f ms at the last calibration): %d trials committed before their kill; "
              "resumed to step %lld\n",
              std::chrono::duration<double, std::milli>(per_save).count(), with_progress,
              static_cast<long long>(committed));
}

}  // namespace
}  // namespace albion::checkpoint
