// File: runtime/data/document_reader.cpp
#include "runtime/data/document_reader.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "runtime/base/check.h"
#include "runtime/base/log.h"

namespace albion::data {

InputFormat parse_input_format(const std::string& name) {
  if (name == "text") return InputFormat::kText;
  if (name == "jsonl") return InputFormat::kJsonl;
  if (name == "chat") return InputFormat::kChat;
  throw UsageError(str_cat("--format '", name, "' is not one of text, jsonl, chat"));
}

const char* input_format_name(InputFormat format) {
  switch (format) {
    case InputFormat::kText: return "text";
    case InputFormat::kJsonl: return "jsonl";
    case InputFormat::kChat: return "chat";
  }
  return "?";
}

DocumentReader::DocumentReader(std::vector<std::string> paths, ReaderOptions options)
    : paths_(std::move(paths)), options_(options) {}

bool DocumentReader::open_next_file() {
  if (current_ >= paths_.size()) return false;
  const std::string& path = paths_[current_++];
  file_ = std::ifstream(path, std::ios::binary);
  ALBION_CHECK_AS(UsageError, file_.good(), path, ": cannot open: ", std::strerror(errno));
  line_ = 0;
  index_ = 0;
  file_done_ = false;
  return true;
}

std::vector<RawDocument> DocumentReader::next_batch() {
  std::vector<RawDocument> batch;
  std::uint64_t bytes = 0;
  while (bytes < options_.batch_bytes) {
    std::optional<RawDocument> document = next_document();
    if (!document) break;
    bytes += document->content.size();
    batch.push_back(std::move(*document));
  }
  return batch;
}

std::optional<RawDocument> DocumentReader::next_document() {
  while (true) {
    if (file_done_ && !open_next_file()) return std::nullopt;
    std::optional<RawDocument> document =
        options_.format == InputFormat::kText ? next_text_document() : next_json_record();
    if (document) return document;
    file_done_ = true;
  }
}

std::optional<RawDocument> DocumentReader::next_text_document() {
  RawDocument document;
  document.source = current_ - 1;
  document.index = index_;
  std::string line;
  // Whole file, or pieces of at least text_document_bytes that end at a blank line.
  while (std::getline(file_, line)) {
    const bool had_newline = !file_.eof();
    bytes_read_ += line.size() + (had_newline ? 1 : 0);
    document.content += line;
    if (had_newline) document.content += '\n';
    if (options_.text_document_bytes > 0 && line.empty() &&
        document.content.size() >= options_.text_document_bytes) {
      break;
    }
  }
  if (document.content.empty()) return std::nullopt;
  ++index_;
  return document;
}

std::optional<RawDocument> DocumentReader::next_json_record() {
  const std::string& path = paths_[current_ - 1];
  std::string line;
  while (std::getline(file_, line)) {
    ++line_;
    bytes_read_ += line.size() + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    RawDocument document;
    document.source = current_ - 1;
    document.line = line_;
    document.index = index_;
    if (options_.format == InputFormat::kChat) {
      document.content = std::move(line);  // validated by the chat renderer, with file:line
      ++index_;
      return document;
    }
    try {
      nlohmann::json record = nlohmann::json::parse(line);
      ALBION_CHECK_AS(UsageError, record.is_object() && record.contains("text") &&
                                      record["text"].is_string(),
                      "record has no string field \"text\"");
      document.content = record["text"].get<std::string>();
    } catch (const std::exception& e) {
      std::string why = dynamic_cast<const nlohmann::json::exception*>(&e)
                            ? std::string("malformed JSON")
                            : std::string(e.what());
      if (!options_.skip_bad_records) {
        throw UsageError(str_cat(path, ":", line_, ": ", why,
                                 " (use --skip-bad-records to skip such lines)"));
      }
      ++skipped_;
      log::debug(path, ":", line_, ": skipped: ", why);
      continue;
    }
    ++index_;
    return document;
  }
  return std::nullopt;
}

}  // namespace albion::data
