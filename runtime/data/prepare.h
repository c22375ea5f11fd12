// File: runtime/data/prepare.h
// `albion data prepare`: tokenizes input files into a token dataset directory (dataset.json plus
// HDF5 shards per split; see token_shard.h and dataset_manifest.h).
//
// Guarantees:
//   - Deterministic: the same inputs, tokenizer, options and seed give byte-identical shards,
//     whatever the thread count (batches are tokenized in parallel, written in input order).
//   - Train/validation split by document, decided by a hash of (source digest, document index,
//     seed), so it does not depend on batching either.
//   - Atomic: everything is written under OUTPUT.partial and renamed to OUTPUT at the end; an
//     interrupted run never leaves a directory that looks like a dataset. An existing OUTPUT is
//     refused without `overwrite`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/document_reader.h"

namespace albion::data {

struct PrepareOptions {
  std::vector<std::string> inputs;  // files or directories (their files, sorted, recursively)
  std::string output;
  std::string tokenizer_spec;
  InputFormat format = InputFormat::kText;
  std::string chat_template = "chatml";  // chat format: llama3, llama3.1, chatml, qwen2.5 or none (chat_record.h)
  double val_fraction = 0.0;
  std::uint64_t shard_tokens = std::uint64_t{1} << 28;  // split shards after this many tokens
  std::uint64_t text_document_bytes = 0;
  std::uint64_t seed = 1234;
  std::string encrypt_key_spec;  // non-empty: encrypt shards and manifest (dataset_encryption.h)
  int threads = 0;  // 0: one per core
  bool overwrite = false;
  bool skip_bad_records = false;
  bool show_progress = false;
};

struct PrepareSummary {
  std::uint64_t input_bytes = 0;
  std::uint64_t train_tokens = 0;
  std::uint64_t train_documents = 0;
  std::uint64_t val_tokens = 0;
  std::uint64_t val_documents = 0;
  std::uint64_t skipped_records = 0;
  std::size_t shards = 0;
  double seconds = 0;
};

PrepareSummary prepare_dataset(const PrepareOptions& options);

}  // namespace albion::data
