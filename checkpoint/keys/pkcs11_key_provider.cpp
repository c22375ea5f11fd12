// File: checkpoint/keys/pkcs11_key_provider.cpp
#include "checkpoint/keys/pkcs11_key_provider.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <mutex>

#include "checkpoint/crypto/data_key.h"
#include "checkpoint/io/unique_fd.h"
#include "checkpoint/keys/key_id.h"
#include "checkpoint/keys/pkcs11_module.h"
#include "checkpoint/keys/pkcs11_uri.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

// PKCS#11 3.0's explicit RFC 5649 mechanism; older headers lack it.
#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x0000210BUL
#endif

// Fixed-width, space-padded CK_TOKEN_INFO fields, compared after trimming the padding.
template <std::size_t N>
std::string token_field(const unsigned char (&field)[N]) {
  std::string text(reinterpret_cast<const char*>(field), N);
  text.erase(text.find_last_not_of(' ') + 1);
  return text;
}

bool matches(const std::optional<std::string>& wanted, const std::string& actual) {
  return !wanted || *wanted == actual;
}

SecretBytes read_pin_file(std::string source, const std::string& spec) {
  if (source.starts_with("file:")) source = source.substr(5);
  UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int error = errno;
    throw UsageError(str_cat(spec, ": cannot open pin-source '", source, "': ", errno_text(error)));
  }
  // As for key files: a PIN others can read is refused, not used.
  struct stat info {};
  ALBION_CHECK_AS(UsageError, ::fstat(fd.get(), &info) == 0 && S_ISREG(info.st_mode), spec, ": pin-source '",
                  source, "' is not a regular file");
  ALBION_CHECK_AS(UsageError, (info.st_mode & (S_IRWXG | S_IRWXO)) == 0, spec, ": pin-source '", source,
                  "' is accessible to group or others (chmod 600 it)");
  SecretBytes buffer(256);
  ssize_t got = -1;
  do {
    got = ::read(fd.get(), buffer.data(), buffer.size());
  } while (got < 0 && errno == EINTR);
  ALBION_CHECK_AS(UsageError, got > 0 && static_cast<std::size_t>(got) < buffer.size(), spec,
                  ": pin-source '", source, "' is empty, unreadable or longer than ", buffer.size() - 1, " bytes");
  std::size_t length = static_cast<std::size_t>(got);
  while (length > 0 && (buffer.data()[length - 1] == '\n' || buffer.data()[length - 1] == '\r')) --length;
  return SecretBytes::copy_of(buffer.view().first(length));
}

class Pkcs11KeyProvider final : public KeyProvider {
 public:
  explicit Pkcs11KeyProvider(Pkcs11Uri uri);

  const std::string& spec() const override { return spec_; }
  const std::string& key_id() const override { return key_id_; }
  std::vector<std::uint8_t> wrap(const DataKey& dek) const override {
    std::lock_guard lock(mutex_);
    return wrap_bytes(dek.secret());
  }
  DataKey unwrap(std::span<const std::uint8_t> wrapped) const override;

 private:
  CK_SLOT_ID find_slot(const Pkcs11Uri& uri) const;
  CK_OBJECT_HANDLE find_key(const Pkcs11Uri& uri) const;
  CK_MECHANISM_TYPE choose_mechanism(CK_SLOT_ID slot) const;
  std::vector<std::uint8_t> wrap_bytes(const SecretBytes& key) const;
  template <typename T>
  T attribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const;

  std::string spec_;
  std::shared_ptr<Pkcs11Module> module_;
  std::unique_ptr<Pkcs11Session> session_;
  CK_OBJECT_HANDLE kek_ = CK_INVALID_HANDLE;
  CK_MECHANISM_TYPE mechanism_ = CKM_AES_KEY_WRAP_KWP;
  std::string key_id_;
  mutable std::mutex mutex_;  // one session: calls into it are serialised
};

Pkcs11KeyProvider::Pkcs11KeyProvider(Pkcs11Uri uri)
    : spec_(uri.printable), module_(load_pkcs11_module(uri.module_path)) {
  const CK_SLOT_ID slot = find_slot(uri);
  mechanism_ = choose_mechanism(slot);
  session_ = std::make_unique<Pkcs11Session>(module_, slot);
  if (uri.pin_source) session_->login(read_pin_file(*uri.pin_source, spec_), spec_);
  if (uri.pin_value) session_->login(*uri.pin_value, spec_);
  kek_ = find_key(uri);
  key_id_ = key_id_from_wrapped_label(wrap_bytes(SecretBytes::copy_of(kKeyIdLabel)));
}

CK_SLOT_ID Pkcs11KeyProvider::find_slot(const Pkcs11Uri& uri) const {
  CK_ULONG count = 0;
  module_->check(module_->api()->C_GetSlotList(CK_TRUE, nullptr, &count), "C_GetSlotList");
  std::vector<CK_SLOT_ID> slots(count);
  module_->check(module_->api()->C_GetSlotList(CK_TRUE, slots.data(), &count), "C_GetSlotList");
  slots.resize(count);
  std::vector<CK_SLOT_ID> found;
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info{};
    if (module_->api()->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
    if (!(info.flags & CKF_TOKEN_INITIALIZED)) continue;
    if (matches(uri.token, token_field(info.label)) && matches(uri.manufacturer, token_field(info.manufacturerID)) &&
        matches(uri.serial, token_field(info.serialNumber)) && matches(uri.model, token_field(info.model))) {
      found.push_back(slot);
    }
  }
  ALBION_CHECK_AS(UsageError, !found.empty(), spec_, ": no token matches (", count,
                  " token(s) present in the module)");
  ALBION_CHECK_AS(UsageError, found.size() == 1, spec_, ": ", found.size(),
                  " tokens match; add serial=... to choose one");
  return found.front();
}

CK_MECHANISM_TYPE Pkcs11KeyProvider::choose_mechanism(CK_SLOT_ID slot) const {
  CK_ULONG count = 0;
  module_->check(module_->api()->C_GetMechanismList(slot, nullptr, &count), "C_GetMechanismList");
  std::vector<CK_MECHANISM_TYPE> mechanisms(count);
  module_->check(module_->api()->C_GetMechanismList(slot, mechanisms.data(), &count), "C_GetMechanismList");
  mechanisms.resize(count);
  const auto has = [&](CK_MECHANISM_TYPE m) { return std::find(mechanisms.begin(), mechanisms.end(), m) != mechanisms.end(); };
  // PKCS#11 3.0 names RFC 5649 CKM_AES_KEY_WRAP_KWP. Tokens from before 3.0 (SoftHSM2 2.6) offer it
  // as CKM_AES_KEY_WRAP_PAD; 3.0 redefines that code as PKCS#7-padded key wrap, which would
  // produce different bytes, so a token offering both gets KWP. The key id test compares the
  // token's output with OpenSSL's RFC 5649 to catch a mismatch.
  if (has(CKM_AES_KEY_WRAP_KWP)) return CKM_AES_KEY_WRAP_KWP;
  if (has(CKM_AES_KEY_WRAP_PAD)) return CKM_AES_KEY_WRAP_PAD;
  throw UsageError(str_cat(spec_, ": the token offers no AES key wrap with padding (RFC 5649)"));
}

template <typename T>
T Pkcs11KeyProvider::attribute(CK_OBJECT_HANDLE object, CK_ATTRIBUTE_TYPE type) const {
  T value{};
  CK_ATTRIBUTE query{type, &value, sizeof value};
  module_->check(session_->api()->C_GetAttributeValue(session_->handle(), object, &query, 1), "C_GetAttributeValue");
  return value;
}

CK_OBJECT_HANDLE Pkcs11KeyProvider::find_key(const Pkcs11Uri& uri) const {
  CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY;
  std::vector<CK_ATTRIBUTE> query{{CKA_CLASS, &secret_class, sizeof secret_class}};
  std::string label = uri.object.value_or("");
  std::vector<std::uint8_t> id = uri.id.value_or(std::vector<std::uint8_t>{});
  if (uri.object) query.push_back({CKA_LABEL, label.data(), label.size()});
  if (uri.id) query.push_back({CKA_ID, id.data(), id.size()});
  CK_FUNCTION_LIST* api = session_->api();
  const CK_SESSION_HANDLE session = session_->handle();
  module_->check(api->C_FindObjectsInit(session, query.data(), query.size()), "C_FindObjectsInit");
  std::array<CK_OBJECT_HANDLE, 2> objects{};
  CK_ULONG found = 0;
  const CK_RV rv = api->C_FindObjects(session, objects.data(), objects.size(), &found);
  api->C_FindObjectsFinal(session);
  module_->check(rv, "C_FindObjects");
  ALBION_CHECK_AS(UsageError, found > 0, spec_,
                  ": no secret key matches in the token (is the PIN given, e.g. pin-source=FILE?)");
  ALBION_CHECK_AS(UsageError, found == 1, spec_, ": several secret keys match; add id=... to choose one");
  const CK_OBJECT_HANDLE key = objects[0];
  ALBION_CHECK_AS(UsageError, attribute<CK_KEY_TYPE>(key, CKA_KEY_TYPE) == CKK_AES, spec_, ": the key is not an AES key");
  ALBION_CHECK_AS(UsageError, attribute<CK_ULONG>(key, CKA_VALUE_LEN) == 32, spec_,
                  ": the key is not 256 bits (create it with --key-type AES:32)");
  ALBION_CHECK_AS(UsageError, attribute<CK_BBOOL>(key, CKA_EXTRACTABLE) == CK_FALSE, spec_,
                  ": the key is extractable, so it could leave the token; use a non-extractable key");
  ALBION_CHECK_AS(UsageError, attribute<CK_BBOOL>(key, CKA_WRAP) == CK_TRUE && attribute<CK_BBOOL>(key, CKA_UNWRAP) == CK_TRUE,
                  spec_, ": the key may not wrap and unwrap (create it with --usage-wrap)");
  return key;
}

std::vector<std::uint8_t> Pkcs11KeyProvider::wrap_bytes(const SecretBytes& key) const {
  CK_FUNCTION_LIST* api = session_->api();
  const CK_SESSION_HANDLE session = session_->handle();
  // The key to wrap becomes a short-lived session object: wrapping only works on objects.
  CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY;
  CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL no = CK_FALSE;
  CK_ATTRIBUTE object_template[] = {
      {CKA_CLASS, &secret_class, sizeof secret_class},
      {CKA_KEY_TYPE, &generic, sizeof generic},
      {CKA_TOKEN, &no, sizeof no},
      {CKA_EXTRACTABLE, &yes, sizeof yes},
      {CKA_VALUE, const_cast<std::uint8_t*>(key.data()), key.size()},
  };
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  module_->check(api->C_CreateObject(session, object_template, std::size(object_template), &handle), "C_CreateObject");
  const Pkcs11ObjectGuard object(*session_, handle);
  CK_MECHANISM mechanism{mechanism_, nullptr, 0};
  CK_ULONG size = 0;
  module_->check(api->C_WrapKey(session, &mechanism, kek_, object.get(), nullptr, &size), "C_WrapKey");
  std::vector<std::uint8_t> wrapped(size);
  module_->check(api->C_WrapKey(session, &mechanism, kek_, object.get(), wrapped.data(), &size), "C_WrapKey");
  wrapped.resize(size);
  return wrapped;
}

DataKey Pkcs11KeyProvider::unwrap(std::span<const std::uint8_t> wrapped) const {
  std::lock_guard lock(mutex_);
  const std::string what = str_cat("unwrapping the data key with ", spec_, " (key id ", key_id_, ")");
  ALBION_CHECK_AS(IntegrityError, wrapped.size() >= 16 && wrapped.size() % 8 == 0 && wrapped.size() <= 4096,
                  what, ": wrapped key has ", wrapped.size(),
                  " bytes, not a valid RFC 5649 length (a multiple of 8, at least 16)");
  CK_FUNCTION_LIST* api = session_->api();
  const CK_SESSION_HANDLE session = session_->handle();
  CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY;
  CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL no = CK_FALSE;
  // Not sensitive and extractable: the data key must come out, to encrypt chunks on the host.
  CK_ATTRIBUTE object_template[] = {
      {CKA_CLASS, &secret_class, sizeof secret_class},
      {CKA_KEY_TYPE, &generic, sizeof generic},
      {CKA_TOKEN, &no, sizeof no},
      {CKA_SENSITIVE, &no, sizeof no},
      {CKA_EXTRACTABLE, &yes, sizeof yes},
  };
  CK_MECHANISM mechanism{mechanism_, nullptr, 0};
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  const CK_RV rv = api->C_UnwrapKey(session, &mechanism, kek_, const_cast<std::uint8_t*>(wrapped.data()),
                                    wrapped.size(), object_template, std::size(object_template), &handle);
  // Tokens report a failed integrity check variously (SoftHSM2: CKR_GENERAL_ERROR).
  if (rv == CKR_WRAPPED_KEY_INVALID || rv == CKR_WRAPPED_KEY_LEN_RANGE || rv == CKR_ENCRYPTED_DATA_INVALID ||
      rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED) {
    throw IntegrityError(str_cat(what, ": the token's AES key unwrap (RFC 5649) failed (", ckr_name(rv),
                                 "): wrong key-encryption key, or the wrapped key was modified"));
  }
  module_->check(rv, "C_UnwrapKey");
  const Pkcs11ObjectGuard object(*session_, handle);
  CK_ATTRIBUTE value{CKA_VALUE, nullptr, 0};
  module_->check(api->C_GetAttributeValue(session, object.get(), &value, 1), "C_GetAttributeValue(CKA_VALUE)");
  ALBION_CHECK_AS(IntegrityError, value.ulValueLen == kDataKeyBytes, what, ": unwrapped a ", value.ulValueLen,
                  "-byte key, expected ", kDataKeyBytes);
  SecretBytes dek(kDataKeyBytes);
  value.pValue = dek.data();
  module_->check(api->C_GetAttributeValue(session, object.get(), &value, 1), "C_GetAttributeValue(CKA_VALUE)");
  return DataKey::from_secret(std::move(dek));
}

}  // namespace

std::unique_ptr<KeyProvider> open_pkcs11_key_provider(std::string_view uri) {
  return std::make_unique<Pkcs11KeyProvider>(parse_pkcs11_uri(uri));
}

}  // namespace albion::checkpoint
