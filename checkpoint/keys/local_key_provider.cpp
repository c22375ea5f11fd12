// File: checkpoint/keys/local_key_provider.cpp
#include "checkpoint/keys/local_key_provider.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>

#include "checkpoint/crypto/hex.h"
#include "checkpoint/crypto/key_wrap.h"
#include "checkpoint/keys/key_file.h"
#include "checkpoint/keys/key_id.h"
#include "runtime/base/check.h"
#include "runtime/base/env.h"

namespace albion::checkpoint {
namespace {

// Wipes a std::string that held key text once it goes out of scope.
class WipedString {
 public:
  explicit WipedString(std::string text) : text_(std::move(text)) {}
  WipedString(const WipedString&) = delete;
  WipedString& operator=(const WipedString&) = delete;
  ~WipedString() {
    if (!text_.empty()) OPENSSL_cleanse(text_.data(), text_.size());
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace

LocalKeyProvider::LocalKeyProvider(std::string spec, SecretBytes kek)
    : spec_(std::move(spec)), kek_(std::move(kek)) {
  ALBION_CHECK(kek_.size() == kKekBytes, spec_, ": key-encryption key of ", kek_.size(), " bytes");
  key_id_ = key_id_of(kek_);
}

std::unique_ptr<KeyProvider> LocalKeyProvider::from_file(std::string_view path) {
  ALBION_CHECK_AS(UsageError, !path.empty(), "key spec 'file:' names no file (expected file:PATH)");
  return std::make_unique<LocalKeyProvider>(str_cat("file:", path), read_key_file(std::string(path)));
}

std::unique_ptr<KeyProvider> LocalKeyProvider::from_environment(std::string_view variable) {
  const std::string spec = str_cat("env:", variable);
  ALBION_CHECK_AS(UsageError,
                  !variable.empty() && std::all_of(variable.begin(), variable.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                  }),
                  "key spec '", spec, "' does not name an environment variable (expected env:VAR)");
  std::optional<std::string> value = environment_variable(variable);
  ALBION_CHECK_AS(UsageError, value.has_value(), "key spec '", spec, "': environment variable ",
                  variable, " is not set");
  const WipedString hex(std::move(*value));
  // Lengths and character classes only: the message must not quote any of the value.
  ALBION_CHECK_AS(UsageError, hex.text().size() == 2 * kKekBytes, "key spec '", spec,
                  "': expected ", 2 * kKekBytes, " hex characters (a 256-bit key), found ",
                  hex.text().size(), " characters (create a key with 'albion keys generate')");
  std::optional<SecretBytes> kek = secret_from_hex(hex.text());
  ALBION_CHECK_AS(UsageError, kek.has_value(), "key spec '", spec,
                  "': the value holds a character that is not a hex digit");
  return std::make_unique<LocalKeyProvider>(spec, std::move(*kek));
}

std::vector<std::uint8_t> LocalKeyProvider::wrap(const DataKey& dek) const {
  return wrap_key(kek_, dek.secret().view());
}

DataKey LocalKeyProvider::unwrap(std::span<const std::uint8_t> wrapped) const {
  return DataKey::from_secret(
      unwrap_key(kek_, wrapped, str_cat("unwrapping the data key with ", spec_, " (key id ", key_id_, ")")));
}

}  // namespace albion::checkpoint
