// File: tests/support/small_dataset.h
// The small byte-level dataset the trainer tests train on: Persuasion, cut into 20 kB documents.
#pragma once

#include <filesystem>
#include <string>

#include "runtime/data/prepare.h"

namespace albion::testing_support {

inline void prepare_small_dataset(const std::string& output, double val_fraction = 0.0) {
  data::PrepareOptions o;
  o.inputs = {(std::filesystem::path(ALBION_SOURCE_DIR) / "recipes/corpus/austen/persuasion.txt").string()};
  o.output = output;
  o.tokenizer_spec = "byte";
  o.text_document_bytes = 20000;
  if (val_fraction > 0) o.val_fraction = val_fraction;
  data::prepare_dataset(o);
}

}  // namespace albion::testing_support
