// File: tests/support/eventually.h
// Waiting in a test for something another thread or process does.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace albion::testing_support {

// Polls `condition` every `poll` until it holds or `limit` has passed; returns its last answer.
inline bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit,
                       std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(poll);
  }
  return condition();
}

}  // namespace albion::testing_support
