// File: launch/model_tokenizer.cpp
#include "launch/model_tokenizer.h"

#include <algorithm>

#include "launch/published_model.h"
#include "runtime/base/check.h"

namespace albion::launch {

namespace fs = std::filesystem;

// The tokenizer the model was trained with (as the checkpoint records it), or --tokenizer, which
// must be the same tokenizer (same content hash) where the checkpoint records one.
std::unique_ptr<tokenizers::Tokenizer> open_recorded_tokenizer(const train::RecordedTokenizer& recorded,
                                                               const std::string& requested,
                                                               const std::string& command) {
  ALBION_CHECK_AS(UsageError, !requested.empty() || !recorded.spec.empty(),
                  command, ": the checkpoint does not record its tokenizer; pass --tokenizer SPEC");
  const std::string spec = requested.empty() ? recorded.spec : requested;
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;
  try {
    tokenizer = tokenizers::load_tokenizer(spec);
  } catch (const UsageError& error) {
    if (!requested.empty()) throw;
    throw UsageError(str_cat(command, ": the model's tokenizer cannot be loaded (", error.what(),
                             "); pass --tokenizer SPEC"));
  }
  ALBION_CHECK_AS(UsageError, recorded.hash.empty() || tokenizer->content_hash() == recorded.hash, command,
                  ": tokenizer ", spec, " is not the one the model was trained with (", recorded.spec, ")");
  return tokenizer;
}

// The tokenizer a Hugging Face directory holds, or --tokenizer, which must then be one of those it
// holds where it holds any.
std::unique_ptr<tokenizers::Tokenizer> open_published_tokenizer(const fs::path& directory, const std::string& requested,
                                                                const std::string& command, bool printing) {
  std::vector<std::string> specs;
  std::vector<PublishedTokenizer> held = published_tokenizers(directory, command, printing, &specs);
  if (requested.empty()) {
    ALBION_CHECK_AS(UsageError, !held.empty(), command, ": ", directory.string(),
                    specs.empty() ? " holds no tokenizer (tokenizer.json, vocab.json and merges.txt, or "
                                    "tokenizer.model)"
                                  : "'s tokenizer cannot be read",
                    "; pass --tokenizer SPEC");
    return std::move(held.front().tokenizer);
  }
  std::unique_ptr<tokenizers::Tokenizer> tokenizer = tokenizers::load_tokenizer(requested);
  const bool the_models = std::any_of(held.begin(), held.end(), [&](const PublishedTokenizer& one) {
    return one.tokenizer->content_hash() == tokenizer->content_hash();
  });
  ALBION_CHECK_AS(UsageError, held.empty() || the_models, command, ": tokenizer ", requested, " is not the model's (",
                  held.empty() ? "" : held.front().spec, ")");
  return tokenizer;
}

}  // namespace albion::launch
