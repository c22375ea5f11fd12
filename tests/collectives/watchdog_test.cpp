// File: tests/collectives/watchdog_test.cpp
// The watchdog fires on an operation that never completes and on a failed health probe, names the
// rank, the operation and the timeout, and stays quiet for operations that complete.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "collectives/watchdog.h"
#include "tests/support/eventually.h"

namespace albion::collectives {
namespace {

using namespace std::chrono_literals;

class FakeWork final : public Work {
 public:
  explicit FakeWork(std::string description) : description_(std::move(description)) {}
  void wait() override {}
  bool completed() override { return done.load(); }
  double running_seconds() override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  const std::string& description() const override { return description_; }
  std::atomic<bool> done{false};

 private:
  std::string description_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

struct Recorder {
  std::mutex mutex;
  std::string reason;
  std::atomic<int> calls{0};
  Watchdog::AbortAction action() {
    return [this](const std::string& why) {
      std::lock_guard lock(mutex);
      reason = why;
      ++calls;
    };
  }
};

TEST(Watchdog, AbortsOnAStuckOperationNamingRankOperationAndTimeout) {
  Recorder recorder;
  Watchdog watchdog(200ms, 3, recorder.action());
  watchdog.watch(std::make_shared<FakeWork>("all_reduce(avg) of 1024 x Float on 'data'"));
  ASSERT_TRUE(testing_support::eventually([&] { return watchdog.fired(); }, 5s));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(recorder.calls.load(), 1);  // once only
  std::lock_guard lock(recorder.mutex);
  EXPECT_NE(recorder.reason.find("rank 3"), std::string::npos) << recorder.reason;
  EXPECT_NE(recorder.reason.find("all_reduce(avg) of 1024 x Float on 'data'"), std::string::npos);
  EXPECT_NE(recorder.reason.find("0.2 s"), std::string::npos) << recorder.reason;
}

TEST(Watchdog, QuietForOperationsThatComplete) {
  Recorder recorder;
  Watchdog watchdog(150ms, 0, recorder.action());
  for (int i = 0; i < 5; ++i) {
    auto work = std::make_shared<FakeWork>("quick");
    watchdog.watch(work);
    std::this_thread::sleep_for(40ms);
    work->done = true;
  }
  std::this_thread::sleep_for(400ms);
  EXPECT_FALSE(watchdog.fired());
  EXPECT_EQ(recorder.calls.load(), 0);
}

TEST(Watchdog, AbortsOnAFailedHealthProbe) {
  Recorder recorder;
  Watchdog watchdog(60s, 1, recorder.action());
  std::atomic<bool> broken{false};
  watchdog.add_health_probe([&]() -> std::optional<std::string> {
    if (broken) return "NCCL communicator 'data' reported an asynchronous error: remote process exited";
    return std::nullopt;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(watchdog.fired());
  broken = true;
  ASSERT_TRUE(testing_support::eventually([&] { return watchdog.fired(); }, 5s));
  std::lock_guard lock(recorder.mutex);
  EXPECT_NE(recorder.reason.find("rank 1: NCCL communicator 'data'"), std::string::npos) << recorder.reason;
}

}  // namespace
}  // namespace albion::collectives
