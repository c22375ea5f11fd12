// File: tests/runtime/data/choice_questions_test.cpp
// Questions files for `albion eval --choices`: the generic, HellaSwag's and MMLU's field names, answers as
// numbers or strings, blank lines skipped; each malformed line refused naming the file, the line
// and the key, without its text.
#include <gtest/gtest.h>

#include <string>

#include "runtime/base/error.h"
#include "runtime/data/choice_questions.h"
#include "tests/support/temp_dir.h"

namespace albion::data {
namespace {

using testing_support::TempDir;

TEST(ChoiceQuestions, ReadsBothFormsAndSkipsBlankLines) {
  TempDir dir;
  const auto path = dir.write("q.jsonl",
                              R"({"context": "A man is", "choices": ["sitting", "flying"], "answer": 1})"
                              "\n\n"
                              R"({"ind": 4, "ctx": "She", "endings": ["ran", "sat", "sang"], "label": "2"})"
                              "\n"
                              R"({"question": "2 + 2 =", "subject": "math", "choices": ["3", "4"], "answer": 1})"
                              "\n");
  const std::vector<ChoiceQuestion> questions = read_choice_questions(path);
  ASSERT_EQ(questions.size(), 3u);
  EXPECT_EQ(questions[0].context, "A man is");
  EXPECT_EQ(questions[0].choices, (std::vector<std::string>{"sitting", "flying"}));
  EXPECT_EQ(questions[0].answer, 1);
  EXPECT_EQ(questions[1].context, "She");
  EXPECT_EQ(questions[1].choices.size(), 3u);
  EXPECT_EQ(questions[1].answer, 2);
  EXPECT_EQ(questions[2].context, "2 + 2 =");
  EXPECT_EQ(questions[2].answer, 1);
}

TEST(ChoiceQuestions, EachBadLineIsRefusedByFileLineAndKeyWithoutItsText) {
  TempDir dir;
  const std::string good = R"({"context": "secret context", "choices": ["x", "y"], "answer": 0})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json secret", "not a JSON object"},
      {R"({"choices": ["x", "y"], "answer": 0})", "\"context\""},
      {R"({"context": "secret", "choices": ["x"], "answer": 0})", "at least two strings"},
      {R"({"context": "secret", "choices": ["x", ""], "answer": 0})", "non-empty string"},
      {R"({"context": "secret", "choices": ["x", "y"], "answer": 2})", "one of its 2 choices"},
      {R"({"context": "secret", "choices": ["x", "y"], "answer": "1a"})", "one of its 2 choices"},
      {R"({"context": "secret", "choices": ["x", "y"]})", "\"answer\""},
  };
  for (const auto& [line, expected] : cases) {
    const auto path = dir.write("bad.jsonl", good + "\n" + line + "\n");
    try {
      read_choice_questions(path);
      ADD_FAILURE() << line << " was accepted";
    } catch (const UsageError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(path + ":2: "), std::string::npos) << message;
      EXPECT_NE(message.find(expected), std::string::npos) << message;
      EXPECT_EQ(message.find("secret"), std::string::npos) << message;
    }
  }
  EXPECT_THROW(read_choice_questions(dir.write("empty.jsonl", "\n")), UsageError);
  EXPECT_THROW(read_choice_questions(dir / "missing.jsonl"), UsageError);
}

}  // namespace
}  // namespace albion::data
