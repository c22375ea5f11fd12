// File: checkpoint/keys/key_provider.cpp
#include "checkpoint/keys/key_provider.h"

#include <algorithm>
#include <cctype>

#include "checkpoint/keys/local_key_provider.h"
#include "checkpoint/keys/pkcs11_key_provider.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

// A key pasted where its file or variable belongs (`env:<64 hex digits>`): 32 or more hex digits
// and nothing else, which no real path or variable name in a recipe looks like.
void refuse_pasted_key(std::string_view scheme, std::string_view name, std::string_view usage) {
  const bool only_hex = std::all_of(name.begin(), name.end(),
                                    [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; });
  ALBION_CHECK_AS(UsageError, !(name.size() >= 32 && only_hex), "key spec: the ", name.size(), " hex digits after '",
                  scheme, "' look like a key itself (not shown); expected ", usage);
}

}  // namespace

std::unique_ptr<KeyProvider> open_key_provider(std::string_view spec) {
  if (spec.starts_with("file:")) {
    refuse_pasted_key("file:", spec.substr(5), "file:PATH, the path of a key file");
    return LocalKeyProvider::from_file(spec.substr(5));
  }
  if (spec.starts_with("env:")) {
    refuse_pasted_key("env:", spec.substr(4), "env:VAR, the name of a variable holding the key");
    return LocalKeyProvider::from_environment(spec.substr(4));
  }
  if (spec.starts_with("pkcs11:")) return open_pkcs11_key_provider(spec);
  throw UsageError(str_cat("unrecognised key spec of ", spec.size(),
                           " characters (not shown, in case it is key material); expected "
                           "file:PATH, env:VAR or pkcs11:URI"));
}

}  // namespace albion::checkpoint
