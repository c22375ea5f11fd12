// File: runtime/tokenizers/bpe_definition_builder.cpp
#include "runtime/tokenizers/bpe_definition_builder.h"

#include "runtime/base/check.h"
#include "runtime/tokenizers/byte_level.h"
#include "runtime/tokenizers/utf8.h"

namespace albion::tokenizers {
namespace {

// Far above any real vocabulary (Llama 3: 128256), and keeps id-indexed tables small enough
// that a corrupt id cannot make us allocate gigabytes.
constexpr std::uint64_t kMaxTokenId = (1u << 24) - 1;

}  // namespace

BpeDefinitionBuilder::BpeDefinitionBuilder(std::string file, std::string source)
    : file_(std::move(file)), source_(std::move(source)) {}

void BpeDefinitionBuilder::set_pre_tokenizer(std::vector<std::string> patterns,
                                             bool add_prefix_space) {
  patterns_ = std::move(patterns);
  add_prefix_space_ = add_prefix_space;
}

void BpeDefinitionBuilder::add_added_token(const std::string& content, std::uint64_t id,
                                           bool special, std::string_view where) {
  ALBION_CHECK_AS(UsageError, id <= kMaxTokenId, where, ": id ", id, " of '", content,
                  "' is out of range");
  require_valid_utf8(content, where);
  const auto [it, inserted] = added_by_id_.try_emplace(static_cast<TokenId>(id), content);
  ALBION_CHECK_AS(UsageError, inserted || it->second == content, where, ": id ", id,
                  " is used by both '", it->second, "' and '", content, "'");
  if (inserted) added_.push_back({content, static_cast<TokenId>(id), special});
}

void BpeDefinitionBuilder::add_vocab(const std::string& spelled, std::uint64_t id,
                                     std::string_view where) {
  ALBION_CHECK_AS(UsageError, id <= kMaxTokenId, where, ": id ", id, " of '", spelled,
                  "' is out of range");
  const auto tid = static_cast<TokenId>(id);
  spelled_to_id_.try_emplace(spelled, tid);
  const auto added_here = added_by_id_.find(tid);
  ALBION_CHECK_AS(UsageError, added_here == added_by_id_.end() || added_here->second == spelled,
                  where, ": id ", id, " is used by both '", spelled, "' and added token '",
                  added_here == added_by_id_.end() ? "" : added_here->second, "'");
  auto bytes = byte_level_to_bytes(spelled);
  if (!bytes) {
    // An added token may sit in the vocabulary spelled as itself (e.g. "<|im_start|>" is fine,
    // but a token with non-Latin characters would not be in GPT-2's alphabet).
    const auto added = added_by_id_.find(tid);
    ALBION_CHECK_AS(UsageError, added != added_by_id_.end() && added->second == spelled, where,
                    ": token '", spelled, "' (id ", id, ") is not spelled in GPT-2's byte alphabet");
    bytes = spelled;
  }
  if (vocab_.size() <= tid) {
    vocab_.resize(tid + 1);
    defined_.resize(tid + 1, false);
  }
  ALBION_CHECK_AS(UsageError, !defined_[tid], where, ": id ", id, " is used by both '",
                  bytes_to_byte_level(vocab_[tid]), "' and '", spelled, "'");
  vocab_[tid] = std::move(*bytes);
  defined_[tid] = true;
}

TokenId BpeDefinitionBuilder::lookup(const std::string& spelled, std::string_view what,
                                     std::string_view where) const {
  const auto it = spelled_to_id_.find(spelled);
  ALBION_CHECK_AS(UsageError, it != spelled_to_id_.end(), where, ": merge ", what, " '", spelled,
                  "' is not in the vocabulary");
  return it->second;
}

void BpeDefinitionBuilder::add_merge_line(std::string_view line, std::string_view where) {
  const std::size_t space = line.find(' ');
  ALBION_CHECK_AS(UsageError,
                  space != std::string_view::npos && space > 0 && space + 1 < line.size() &&
                      line.find(' ', space + 1) == std::string_view::npos,
                  where, ": expected a merge \"left right\", got '", line, "'");
  add_merge(std::string(line.substr(0, space)), std::string(line.substr(space + 1)), where);
}

void BpeDefinitionBuilder::add_merge(const std::string& left, const std::string& right,
                                     std::string_view where) {
  const TokenId l = lookup(left, "left side", where);
  const TokenId r = lookup(right, "right side", where);
  const TokenId result = lookup(left + right, "result", where);
  merges_.push_back({l, r, result});
}

BpeDefinition BpeDefinitionBuilder::finish() {
  BpeDefinition def;
  def.source = source_;
  def.file = file_;
  def.pre_tokenizer_patterns = std::move(patterns_);
  def.add_prefix_space = add_prefix_space_;
  def.ignore_merges = ignore_merges_;
  def.vocab = std::move(vocab_);
  def.defined = std::move(defined_);
  def.merges = std::move(merges_);
  def.added = std::move(added_);
  return def;
}

}  // namespace albion::tokenizers
