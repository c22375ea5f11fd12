// File: fuzz/tokenizer_json_fuzzer.cpp
// libFuzzer target: any bytes as a Hugging Face tokenizer.json (data.tokenizer and model.init read
// the one downloaded with a model). The loader must accept or throw albion::Error, never crash or
// hang, also on the regexes it takes from the file and compiles; a tokenizer it accepts must keep
// tokenizer.h's promises on a fixed text: every id below vocab_size(), decode(encode(text)) ==
// text (but for add_prefix_space's spaces) with special tokens as text or recognised, and a
// content hash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "runtime/base/error.h"
#include "runtime/tokenizers/hf_tokenizer_json.h"

namespace tok = albion::tokenizers;

namespace {

// Letters, digits, runs of spaces and newlines, punctuation, multi-byte UTF-8 (2, 3 and 4 bytes)
// and the special tokens of the seeds, spelled out.
constexpr std::string_view kText =
    " Hello world! It's 2026: 12345 tokens,\n\n  indented\ttabs\r\n"
    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x98\x80 <|endoftext|><|eot_id|>end ";

// Whether `text` is `decoded` with some spaces taken out (greedy matching finds a way if any).
bool is_text_plus_spaces(std::string_view decoded, std::string_view text) {
  std::size_t j = 0;
  for (char c : decoded) {
    if (j < text.size() && c == text[j]) {
      ++j;
    } else if (c != ' ') {
      return false;
    }
  }
  return j == text.size();
}

// add_prefix_space, as Hugging Face's, puts a space before each piece of text (between added
// tokens) that does not start with one; otherwise decoding gives back exactly what was encoded.
void require_round_trip(const tok::Tokenizer& tokenizer, tok::SpecialTokens special, bool adds_prefix_space) {
  try {
    const std::vector<tok::TokenId> ids = tokenizer.encode(kText, special);
    for (tok::TokenId id : ids) {
      if (id >= tokenizer.vocab_size()) std::abort();
    }
    const std::string decoded = tokenizer.decode(ids);
    if (adds_prefix_space ? !is_text_plus_spaces(decoded, kText) : decoded != kText) std::abort();
  } catch (const albion::Error&) {
    // Refusing the text (a pattern's match limit) is allowed; encoding it wrongly is not.
  }
}

bool adds_prefix_space(const tok::Tokenizer& tokenizer) {
  try {
    return tokenizer.decode(tokenizer.encode("x")) == " x";
  } catch (const albion::Error&) {
    return true;  // the weaker check, then
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto tokenizer =
        tok::parse_hf_tokenizer_json(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    const bool prefix_space = adds_prefix_space(*tokenizer);
    require_round_trip(*tokenizer, tok::SpecialTokens::kAsText, prefix_space);
    require_round_trip(*tokenizer, tok::SpecialTokens::kRecognize, prefix_space);
    if (tokenizer->content_hash().size() != 64) std::abort();
  } catch (const albion::Error&) {
  }
  return 0;
}
