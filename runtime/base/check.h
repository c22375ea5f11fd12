// File: runtime/base/check.h
// Check macros that stream context into the error message:
//   ALBION_CHECK(n % world == 0, "size ", n, " not divisible by world size ", world);
// ALBION_CHECK is for invariants of our own code: the message gets file:line and it throws
// albion::Error. For input from outside (files, recipes, arguments) throw the specific error type
// with ALBION_CHECK_AS(UsageError, ...) so the exit code is right and no source location leaks
// into a user-facing message. Never use assert() on outside input: it vanishes in release builds.
#pragma once

#include <sstream>
#include <string>
#include <utility>

#include "runtime/base/error.h"

namespace albion {

// Concatenates any streamable values into one string.
template <typename... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}

namespace detail {
[[noreturn]] void throw_check_failure(const char* file, int line, const char* condition,
                                      const std::string& message);
}  // namespace detail

}  // namespace albion

#define ALBION_CHECK(cond, ...)                                                          \
  do {                                                                                   \
    if (!(cond)) [[unlikely]] {                                                          \
      ::albion::detail::throw_check_failure(__FILE__, __LINE__, #cond,                   \
                                            ::albion::str_cat("" __VA_OPT__(, ) __VA_ARGS__)); \
    }                                                                                    \
  } while (false)

#define ALBION_CHECK_AS(ErrorType, cond, ...)                                    \
  do {                                                                           \
    if (!(cond)) [[unlikely]] {                                                  \
      throw ::albion::ErrorType(::albion::str_cat("" __VA_OPT__(, ) __VA_ARGS__)); \
    }                                                                            \
  } while (false)
