// File: tests/support/tiny_bpe.h
// A small byte-level BPE tokenizer.json written in code, for tests and fuzz targets that need
// particular merges: the 256 byte tokens, then one token per merge (given as raw bytes, in rank
// order), then the special tokens; pre-tokenized by a Split on `pattern`, as Llama 3's files are.
#pragma once

#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "runtime/tokenizers/byte_level.h"

namespace albion::testing_support {

using Merge = std::pair<std::string_view, std::string_view>;

inline std::string tiny_bpe_json(std::string_view pattern, std::span<const Merge> merges,
                                 std::span<const std::string_view> special_tokens) {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    vocab[tokenizers::bytes_to_byte_level(std::string(1, static_cast<char>(b)))] = b;
  }
  json merge_lines = json::array();
  for (const auto& [left, right] : merges) {
    const std::string l = tokenizers::bytes_to_byte_level(left);
    const std::string r = tokenizers::bytes_to_byte_level(right);
    merge_lines.push_back(l + " " + r);
    vocab[l + r] = vocab.size();
  }
  json added = json::array();
  for (std::string_view special : special_tokens) {
    added.push_back({{"id", vocab.size() + added.size()}, {"content", special}, {"special", true}});
  }
  const json split = {{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"},
                      {"invert", false}};
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  return json{{"added_tokens", added},
              {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", {split, byte_level}}}},
              {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merge_lines}}}}
      .dump();
}

}  // namespace albion::testing_support
