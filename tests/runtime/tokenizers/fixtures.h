// File: tests/runtime/tokenizers/fixtures.h
// Paths of the committed tokenizer fixtures (made by fixtures/make_fixtures.py), the expected ids
// it recorded, a scratch directory for malformed files, and a random valid-UTF-8 generator.
#pragma once


#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"

namespace albion::tokenizers::testing {

inline std::string fixture(const std::string& relative) {
  // Appended step by step: GCC 12 reports a false -Warray-bounds for the one-expression form.
  std::string path = ALBION_SOURCE_DIR;
  path.append("/tests/runtime/tokenizers/fixtures/");
  path.append(relative);
  return path;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline const nlohmann::json& expected() {
  static const nlohmann::json kExpected = nlohmann::json::parse(read_file(fixture("expected.json")));
  return kExpected;
}

// A fresh directory under the system temp dir, removed when the object goes away.
using ScratchDir = albion::testing_support::TempDir;

// Random valid UTF-8 drawn from every plane: ASCII (control characters included) most often,
// then Latin, CJK, emoji and the rest of the code space, never surrogates. `exclude` code points
// are skipped (SentencePiece reads U+2581 as its own space marker).
inline std::string random_utf8(std::mt19937& rng, std::size_t code_points,
                               char32_t exclude = 0xFFFFFFFF) {
  std::string out;
  std::uniform_int_distribution<int> kind(0, 9);
  auto append = [&](char32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  };
  for (std::size_t i = 0; i < code_points; ++i) {
    char32_t cp;
    switch (kind(rng)) {
      case 0: cp = std::uniform_int_distribution<char32_t>(0, 0x1F)(rng); break;
      case 1: case 2: case 3: cp = std::uniform_int_distribution<char32_t>(0x20, 0x7F)(rng); break;
      case 4: cp = std::uniform_int_distribution<char32_t>(0x80, 0x7FF)(rng); break;
      case 5: cp = std::uniform_int_distribution<char32_t>(0x800, 0xFFFF)(rng); break;
      case 6: cp = std::uniform_int_distribution<char32_t>(0x4E00, 0x9FFF)(rng); break;
      case 7: cp = std::uniform_int_distribution<char32_t>(0x1F300, 0x1FAFF)(rng); break;
      default: cp = std::uniform_int_distribution<char32_t>(0x10000, 0x10FFFF)(rng); break;
    }
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == exclude) cp = ' ';
    append(cp);
  }
  return out;
}

}  // namespace albion::tokenizers::testing
