// File: runtime/tokenizers/byte_tokenizer.h
// The byte tokenizer (spec "byte"): token i is byte i for i < 256, and <|endoftext|> is 256.
#pragma once

#include <memory>

#include "runtime/tokenizers/tokenizer.h"

namespace albion::tokenizers {

std::unique_ptr<Tokenizer> make_byte_tokenizer();

}  // namespace albion::tokenizers
