// File: runtime/base/check.cpp
#include "runtime/base/check.h"

namespace albion::detail {

void throw_check_failure(const char* file, int line, const char* condition,
                         const std::string& message) {
  // __FILE__ is relative to the repository (-fmacro-prefix-map in cmake/AlbionCompiler.cmake).
  throw Error(str_cat(message.empty() ? std::string("check failed") : message, " [", condition,
                      " at ", file, ":", line, "]"));
}

}  // namespace albion::detail
