// File: runtime/base/redact.h
// A secret that can ride inside otherwise printable text: the PIN of a PKCS#11 key spec
// (RFC 7512's pin-value attribute) in a recipe key or a command-line argument. What Albion prints
// or stores from those (the resolved recipe, the launch command line, fatal errors) passes through
// here. `pin-source=file:PATH` keeps the PIN out of recipes and command lines altogether.
#pragma once

#include <string>
#include <string_view>

namespace albion {

// `text` with the value of every pin-value attribute replaced by "(not shown)". A value ends at
// '&' (the next attribute) or whitespace; the PKCS#11 URI parser requires both percent-encoded
// inside a PIN, so no part of one is left behind (a closing quote after it may go too). Text
// already passed through here comes back unchanged.
std::string without_pins(std::string_view text);

}  // namespace albion
