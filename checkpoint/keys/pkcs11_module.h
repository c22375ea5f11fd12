// File: checkpoint/keys/pkcs11_module.h
// A PKCS#11 module loaded with dlopen, initialised once per process however many providers use
// it (load_pkcs11_module shares one Pkcs11Module per path; the last owner finalises and unloads
// it), and sessions on its slots. Every call's CK_RV is checked; failures name the function and
// the return value (CKR_PIN_INCORRECT, ...), never a PIN or key.
#pragma once

#include <p11-kit/pkcs11.h>

#include <memory>
#include <string>

#include "checkpoint/crypto/secret_bytes.h"
#include "runtime/base/error.h"

namespace albion::checkpoint {

// "CKR_PIN_INCORRECT (0xa0)".
std::string ckr_name(CK_RV rv);

class Pkcs11Module {
 public:
  // Use load_pkcs11_module(); public for make_shared.
  explicit Pkcs11Module(std::string path);
  Pkcs11Module(const Pkcs11Module&) = delete;
  Pkcs11Module& operator=(const Pkcs11Module&) = delete;
  ~Pkcs11Module();

  const std::string& path() const { return path_; }
  CK_FUNCTION_LIST* api() const { return api_; }
  // Throws SystemError("<module>: <function> failed: CKR_...") unless rv is CKR_OK.
  void check(CK_RV rv, const char* function) const;

 private:
  std::string path_;
  void* handle_ = nullptr;
  CK_FUNCTION_LIST* api_ = nullptr;
  bool finalize_ = false;  // false when someone else in this process initialised the module
};

// The module at `path`, loaded and initialised on first use. UsageError when it cannot be loaded
// or is not a PKCS#11 module.
std::shared_ptr<Pkcs11Module> load_pkcs11_module(const std::string& path);

// An open session on one slot, closed on destruction (closing a token's last session also logs
// the application out, so no C_Logout is needed that could log out another provider).
class Pkcs11Session {
 public:
  Pkcs11Session(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot);
  Pkcs11Session(const Pkcs11Session&) = delete;
  Pkcs11Session& operator=(const Pkcs11Session&) = delete;
  ~Pkcs11Session();

  // Logs the user in; a wrong PIN is a UsageError naming `what`.
  void login(const SecretBytes& pin, const std::string& what);
  CK_SESSION_HANDLE handle() const { return session_; }
  const Pkcs11Module& module() const { return *module_; }
  CK_FUNCTION_LIST* api() const { return module_->api(); }

 private:
  std::shared_ptr<Pkcs11Module> module_;
  CK_SESSION_HANDLE session_ = CK_INVALID_HANDLE;
};

// A session object destroyed when it goes out of scope (the temporary keys wrap/unwrap create).
class Pkcs11ObjectGuard {
 public:
  Pkcs11ObjectGuard(const Pkcs11Session& session, CK_OBJECT_HANDLE object)
      : session_(session), object_(object) {}
  Pkcs11ObjectGuard(const Pkcs11ObjectGuard&) = delete;
  Pkcs11ObjectGuard& operator=(const Pkcs11ObjectGuard&) = delete;
  ~Pkcs11ObjectGuard() {
    if (object_ != CK_INVALID_HANDLE) session_.api()->C_DestroyObject(session_.handle(), object_);
  }
  CK_OBJECT_HANDLE get() const { return object_; }

 private:
  const Pkcs11Session& session_;
  CK_OBJECT_HANDLE object_;
};

}  // namespace albion::checkpoint
