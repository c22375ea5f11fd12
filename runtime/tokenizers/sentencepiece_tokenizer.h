// File: runtime/tokenizers/sentencepiece_tokenizer.h
// SentencePiece .model files (spec "sentencepiece:PATH.model"; Llama 2, Mistral) through
// libsentencepiece.
#pragma once

#include <memory>
#include <string>

#include "runtime/tokenizers/tokenizer.h"

namespace albion::tokenizers {

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& path);

}  // namespace albion::tokenizers
