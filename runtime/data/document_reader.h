// File: runtime/data/document_reader.h
// Reads input files into documents for `albion data prepare`, in file order, in batches of about
// `batch_bytes` so workers can tokenize batches in parallel while the output stays in input order.
//
// Formats:
//   text   each file is one document, or with `text_document_bytes` > 0, pieces of about that many
//          bytes cut at blank lines (so a few large files still give enough documents to split).
//   jsonl  one JSON object per line with a string field "text"; blank lines are skipped.
//   chat   one JSON object per line: {"messages": [{"role", "content"}, ...]} or
//          {"prompt", "completion"}; the line is kept whole and parsed by the chat renderer.
// A line that is not valid JSON, or lacks its field, is a UsageError naming file and line unless
// `skip_bad_records`, which counts it instead.
#pragma once

#include <cstdint>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace albion::data {

enum class InputFormat { kText, kJsonl, kChat };

InputFormat parse_input_format(const std::string& name);  // UsageError for unknown names
const char* input_format_name(InputFormat format);

struct RawDocument {
  std::string content;      // text (text, jsonl) or the whole JSON line (chat)
  std::size_t source = 0;   // index into the input list
  std::uint64_t line = 0;   // 1-based line of the record in its file; 0 for text
  std::uint64_t index = 0;  // position of the document within its source, for the split
};

struct ReaderOptions {
  InputFormat format = InputFormat::kText;
  std::uint64_t text_document_bytes = 0;
  std::uint64_t batch_bytes = 4 << 20;
  bool skip_bad_records = false;
};

class DocumentReader {
 public:
  DocumentReader(std::vector<std::string> paths, ReaderOptions options);

  // The next batch in input order; empty when every file is read.
  std::vector<RawDocument> next_batch();
  // Input bytes consumed so far (for progress), and records skipped as bad.
  std::uint64_t bytes_read() const { return bytes_read_; }
  std::uint64_t skipped_records() const { return skipped_; }

 private:
  bool open_next_file();
  std::optional<RawDocument> next_document();
  std::optional<RawDocument> next_text_document();
  std::optional<RawDocument> next_json_record();

  std::vector<std::string> paths_;
  ReaderOptions options_;
  std::size_t current_ = 0;  // index of the open file + 1; 0 before the first
  std::ifstream file_;
  std::uint64_t line_ = 0;
  std::uint64_t index_ = 0;
  bool file_done_ = true;
  std::uint64_t bytes_read_ = 0;
  std::uint64_t skipped_ = 0;
};

}  // namespace albion::data
