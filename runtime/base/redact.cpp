// File: runtime/base/redact.cpp
#include "runtime/base/redact.h"

#include <algorithm>

namespace albion {

std::string without_pins(std::string_view text) {
  constexpr std::string_view kAttribute = "pin-value=";
  constexpr std::string_view kValueEnds = "& \t\r\n";
  constexpr std::string_view kHidden = "(not shown)";
  std::string out;
  out.reserve(text.size());
  std::size_t from = 0;
  for (std::size_t at = text.find(kAttribute); at != std::string_view::npos; at = text.find(kAttribute, from)) {
    std::size_t value = at + kAttribute.size();
    out.append(text.substr(from, value - from)).append(kHidden);
    // Hidden already (a stored recipe printed again): its space must not end the value, or the
    // text would grow "(not shown) shown)" each time (found by fuzz/recipe_fuzzer.cpp).
    if (text.substr(value).starts_with(kHidden)) value += kHidden.size();
    from = std::min(text.size(), text.find_first_of(kValueEnds, value));
  }
  out.append(text.substr(from));
  return out;
}

}  // namespace albion
