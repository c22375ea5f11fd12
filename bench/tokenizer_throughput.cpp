// File: bench/tokenizer_throughput.cpp
// Single-thread encoding throughput of a tokenizer, in MB/s of UTF-8 input per core.
//   build/bench/tokenizer_throughput [SPEC] [FILE...]
// SPEC defaults to the GPT-2-style test fixture (hf:tests/.../gpt2/tokenizer.json), FILEs to the
// built-in corpus (recipes/corpus/austen/*.txt). Each run encodes every file whole with
// SpecialTokens::kAsText, then again split into paragraphs (chunks ending after each blank line,
// the way documents often arrive); the first run uses a freshly loaded tokenizer (empty word
// cache), the median is over the warm runs that follow. bench/tokenizer_throughput.py measures Python
// `tokenizers` and tiktoken on the same input with the same vocabulary, for the ratio.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/base/error.h"
#include "runtime/tokenizers/tokenizer.h"

namespace {

constexpr int kWarmRuns = 5;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw albion::UsageError(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  using albion::tokenizers::load_tokenizer;
  const std::string root = ALBION_SOURCE_DIR;
  const std::string spec =
      argc > 1 ? argv[1] : "hf:" + root + "/tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json";
  std::vector<std::string> files;
  for (int i = 2; i < argc; ++i) files.push_back(argv[i]);
  if (files.empty()) {
    for (const char* name : {"emma", "northangerabbey", "persuasion", "prideprejudice"}) {
      files.push_back(root + "/recipes/corpus/austen/" + name + ".txt");
    }
  }
  try {
    std::vector<std::string> texts;
    std::size_t bytes = 0;
    for (const auto& f : files) {
      texts.push_back(read_all(f));
      bytes += texts.back().size();
    }
    const double mb = static_cast<double>(bytes) / 1e6;
    auto run = [&](const albion::tokenizers::Tokenizer& tok, std::size_t& tokens) {
      tokens = 0;
      const auto start = std::chrono::steady_clock::now();
      for (const auto& t : texts) tokens += tok.encode(t).size();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    auto measure = [&](const char* unit) {
      const auto tok = load_tokenizer(spec);
      std::size_t tokens = 0;
      const double cold = run(*tok, tokens);
      std::vector<double> warm;
      for (int i = 0; i < kWarmRuns; ++i) warm.push_back(run(*tok, tokens));
      std::sort(warm.begin(), warm.end());
      const double median = warm[warm.size() / 2];
      std::printf("albion (%s), 1 thread: cold %.1f MB/s; warm median of %d %.1f MB/s "
                  "(%.2f M tokens/s, %.2f bytes/token)\n",
                  unit, mb / cold, kWarmRuns, mb / median,
                  static_cast<double>(tokens) / median / 1e6,
                  static_cast<double>(bytes) / static_cast<double>(tokens));
      return tok->description();
    };
    std::printf("input: %zu files, %.2f MB\n", files.size(), mb);
    const std::string description = measure("whole files");
    std::vector<std::string> paragraphs;
    for (const auto& t : texts) {
      std::size_t start = 0;
      while (start < t.size()) {
        const std::size_t blank = t.find("\n\n", start);
        const std::size_t end = blank == std::string::npos ? t.size() : blank + 2;
        paragraphs.push_back(t.substr(start, end - start));
        start = end;
      }
    }
    texts = std::move(paragraphs);
    measure("paragraphs");
    std::printf("tokenizer: %s\n", description.c_str());
    return 0;
  } catch (const albion::Error& e) {
    std::fprintf(stderr, "tokenizer_throughput: error: %s\n", e.what());
    return static_cast<int>(e.exit_code());
  }
}
