// File: runtime/tokenizers/read_file.h
// Reads a tokenizer definition file whole; a missing or unreadable file is the user's to fix, so
// it is a UsageError naming the path.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace albion::tokenizers {

std::string read_definition_file(const std::string& path);

// 1-based line number of byte `offset` in text (for error messages about JSON files).
std::size_t line_of_offset(std::string_view text, std::size_t offset);

}  // namespace albion::tokenizers
