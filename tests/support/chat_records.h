// File: tests/support/chat_records.h
// Chat training data for tests whose micro-batches must hold different numbers of trained targets.
#pragma once

#include <sstream>
#include <string>

namespace albion::testing_support {

// `count` prompt/completion records (JSONL) whose answers, the only trained targets, run from 0 to
// 22 characters.
inline std::string varied_answer_records(int count) {
  std::ostringstream records;
  for (int i = 0; i < count; ++i) {
    records << R"({"prompt": "Q: )" << i << R"(?\nA:", "completion": " )"
            << std::string(static_cast<std::size_t>(i % 23), static_cast<char>('a' + i % 26)) << "\"}\n";
  }
  return records.str();
}

}  // namespace albion::testing_support
