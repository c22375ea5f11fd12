// File: runtime/data/choice_questions.cpp
#include "runtime/data/choice_questions.h"

#include <charconv>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "runtime/base/check.h"

namespace albion::data {
namespace {

// The first of `names` the object has (the generic name, then HellaSwag's, then MMLU's).
const nlohmann::json* field(const nlohmann::json& object, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (auto it = object.find(name); it != object.end()) return &*it;
  }
  return nullptr;
}

ChoiceQuestion parse_question(const std::string& line, const std::string& where) {
  const nlohmann::json object = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  ALBION_CHECK_AS(UsageError, object.is_object(), where, ": not a JSON object");
  ChoiceQuestion question;
  const nlohmann::json* context = field(object, {"context", "ctx", "question"});
  ALBION_CHECK_AS(UsageError, context != nullptr && context->is_string(), where,
                  ": \"context\" (or HellaSwag's \"ctx\", MMLU's \"question\") must be a string");
  question.context = context->get<std::string>();
  const nlohmann::json* choices = field(object, {"choices", "endings"});
  ALBION_CHECK_AS(UsageError, choices != nullptr && choices->is_array() && choices->size() >= 2, where,
                  ": \"choices\" (or HellaSwag's \"endings\") must be a list of at least two strings");
  for (const nlohmann::json& choice : *choices) {
    ALBION_CHECK_AS(UsageError, choice.is_string() && !choice.get_ref<const std::string&>().empty(), where,
                    ": every choice must be a non-empty string");
    question.choices.push_back(choice.get<std::string>());
  }
  const nlohmann::json* answer = field(object, {"answer", "label"});
  bool read = false;
  if (answer != nullptr && answer->is_number_integer()) {
    question.answer = answer->get<std::int64_t>();
    read = true;
  } else if (answer != nullptr && answer->is_string()) {
    const std::string& text = answer->get_ref<const std::string&>();
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), question.answer);
    read = error == std::errc() && end == text.data() + text.size();
  }
  const auto count = static_cast<std::int64_t>(question.choices.size());
  ALBION_CHECK_AS(UsageError, read && question.answer >= 0 && question.answer < count, where,
                  ": \"answer\" (or HellaSwag's \"label\") must be the index of one of its ", count,
                  " choices, counted from 0");
  return question;
}

}  // namespace

std::vector<ChoiceQuestion> read_choice_questions(const std::filesystem::path& path) {
  std::ifstream in(path);
  ALBION_CHECK_AS(UsageError, in.is_open() && !std::filesystem::is_directory(path), path.string(),
                  ": cannot read the questions file");
  std::vector<ChoiceQuestion> questions;
  std::int64_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    questions.push_back(parse_question(line, str_cat(path.string(), ":", number)));
  }
  ALBION_CHECK_AS(UsageError, !questions.empty(), path.string(), ": holds no question (one JSON object a line)");
  return questions;
}

}  // namespace albion::data
