// File: runtime/data/choice_questions.h
// Multiple-choice questions for `albion eval --choices FILE`: a JSON Lines file, one question per
// line, either
//   {"context": "...", "choices": ["...", ...], "answer": N}                  or HellaSwag's own
//   {"ctx": "...", "endings": ["...", ...], "label": N}                       (other keys ignored),
// or MMLU's as Hugging Face datasets export it ({"question", "choices", "answer"}: each choice then
// scored as the continuation of the question, the harness's cloze form), with N the 0-based index
// of the right choice (an integer, or a string of one, as some exports write it). A model answers
// with the choice it finds most likely after the context (see runtime/train/choice_score.h).
// Errors name the file, the line number and the key, never the text: a private benchmark is
// private data.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace albion::data {

struct ChoiceQuestion {
  std::string context;
  std::vector<std::string> choices;  // at least two
  std::int64_t answer = 0;           // index into choices
};

// Every question of `path` (blank lines skipped). UsageError naming the file and line for a file
// that cannot be read, holds no question, or has a line that is not such a question.
std::vector<ChoiceQuestion> read_choice_questions(const std::filesystem::path& path);

}  // namespace albion::data
