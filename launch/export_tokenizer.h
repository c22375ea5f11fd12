// File: launch/export_tokenizer.h
// What `ckpt export` writes beside a model's weights so that the directory runs as the run's model
// did, in transformers and in `albion generate` and `eval`: the files of the tokenizer it trained
// with, under transformers' names; for a model fine-tuned on chat data, tokenizer_config.json with
// the chat template its data was rendered in and that template's end-of-turn token as eos_token;
// and generation_config.json with the recipe's sampling and the ids that end a text.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "runtime/config/recipe.h"
#include "runtime/train/checkpointing.h"

namespace albion::launch {

// Writes into `directory`; returns the names of the files written. The tokenizer's files (and
// with them the chat template and the end ids) only while they still hold the tokenizer the run
// trained with (its recorded content hash): another one beside the weights would be worse than
// none, and a warning says why there is none.
std::vector<std::string> export_tokenizer_and_sampling(const train::RecordedTokenizer& recorded,
                                                       const config::EvalConfig& sampling,
                                                       const std::filesystem::path& directory);

}  // namespace albion::launch
