// File: launch/model_tokenizer.h
// The tokenizer a model was trained with, for the commands that encode text for it (`generate`,
// `eval --choices`): the one a checkpoint records, or one a Hugging Face directory holds. Errors
// start with `command`.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "runtime/tokenizers/tokenizer.h"
#include "runtime/train/checkpointing.h"

namespace albion::launch {

// The tokenizer the model was trained with (as the checkpoint records it), or --tokenizer, which
// must be the same tokenizer (same content hash) where the checkpoint records one.
std::unique_ptr<tokenizers::Tokenizer> open_recorded_tokenizer(const train::RecordedTokenizer& recorded,
                                                               const std::string& requested,
                                                               const std::string& command);

// The tokenizer a Hugging Face directory holds, or --tokenizer, which must then be one of those it
// holds where it holds any.
std::unique_ptr<tokenizers::Tokenizer> open_published_tokenizer(const std::filesystem::path& directory,
                                                                const std::string& requested,
                                                                const std::string& command, bool printing);

}  // namespace albion::launch
