// File: runtime/tokenizers/read_file.cpp
#include "runtime/tokenizers/read_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/base/check.h"

namespace albion::tokenizers {

std::string read_definition_file(const std::string& path) {
  std::error_code ec;
  ALBION_CHECK_AS(UsageError, !std::filesystem::is_directory(path, ec), path,
                  ": is a directory, expected a tokenizer file");
  std::ifstream in(path, std::ios::binary);
  ALBION_CHECK_AS(UsageError, in.good(), path, ": cannot open tokenizer file: ",
                  std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  ALBION_CHECK_AS(UsageError, !in.bad(), path, ": read error");
  return buffer.str();
}

std::size_t line_of_offset(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + offset, '\n'));
}

}  // namespace albion::tokenizers
