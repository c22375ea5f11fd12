// File: checkpoint/keys/key_provider.cpp
#include "checkpoint/keys/key_provider.h"

#include "checkpoint/keys/local_key_provider.h"
#include "checkpoint/keys/pkcs11_key_provider.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {

std::unique_ptr<KeyProvider> open_key_provider(std::string_view spec) {
  if (spec.starts_with("file:")) return LocalKeyProvider::from_file(spec.substr(5));
  if (spec.starts_with("env:")) return LocalKeyProvider::from_environment(spec.substr(4));
  if (spec.starts_with("pkcs11:")) return open_pkcs11_key_provider(spec);
  throw UsageError(str_cat("unrecognised key spec of ", spec.size(),
                           " characters (not shown, in case it is key material); expected "
                           "file:PATH, env:VAR or pkcs11:URI"));
}

}  // namespace albion::checkpoint
