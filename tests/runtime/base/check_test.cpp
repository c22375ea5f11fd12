// File: tests/runtime/base/check_test.cpp
#include <gtest/gtest.h>

#include <string>

#include "runtime/base/check.h"

namespace albion {
namespace {

TEST(StrCat, JoinsMixedValues) { EXPECT_EQ(str_cat("a", 1, '-', 2.5, std::string("z")), "a1-2.5z"); }

TEST(Check, PassingConditionDoesNothing) { EXPECT_NO_THROW(ALBION_CHECK(1 + 1 == 2, "never")); }

TEST(Check, FailureCarriesMessageConditionAndRelativeLocation) {
  int size = 7;
  try {
    ALBION_CHECK(size % 2 == 0, "size ", size, " is odd");
    FAIL() << "expected a throw";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("size 7 is odd"), std::string::npos) << message;
    EXPECT_NE(message.find("size % 2 == 0"), std::string::npos) << message;
    // Locations are relative to the repository root, never the build machine's absolute path.
    EXPECT_NE(message.find(" at tests/runtime/base/check_test.cpp:"), std::string::npos) << message;
    EXPECT_EQ(e.exit_code(), ExitCode::kFailure);
  }
}

TEST(Check, CheckAsThrowsTheRequestedTypeWithoutLocation) {
  try {
    ALBION_CHECK_AS(UsageError, false, "recipe key 'optim.lr' must be positive");
    FAIL() << "expected a throw";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "recipe key 'optim.lr' must be positive");
    EXPECT_EQ(e.exit_code(), ExitCode::kUsage);
  }
}

TEST(Errors, ExitCodesFollowTheCliContract) {
  EXPECT_EQ(static_cast<int>(UsageError("x").exit_code()), 2);
  EXPECT_EQ(static_cast<int>(IntegrityError("x").exit_code()), 3);
  EXPECT_EQ(static_cast<int>(SystemError("x").exit_code()), 1);
  EXPECT_EQ(static_cast<int>(NotImplementedError("x").exit_code()), 1);
}

}  // namespace
}  // namespace albion
