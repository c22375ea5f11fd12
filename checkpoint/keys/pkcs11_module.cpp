// File: checkpoint/keys/pkcs11_module.cpp
#include "checkpoint/keys/pkcs11_module.h"

#include <dlfcn.h>

#include <array>
#include <cstdio>
#include <map>
#include <mutex>

#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

struct CkrName {
  CK_RV rv;
  const char* name;
};

constexpr CkrName kCkrNames[] = {
    {CKR_OK, "CKR_OK"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID"},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE"},
    {CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
    {CKR_UNWRAPPING_KEY_HANDLE_INVALID, "CKR_UNWRAPPING_KEY_HANDLE_INVALID"},
    {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID"},
    {CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE"},
    {CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
};

}  // namespace

std::string ckr_name(CK_RV rv) {
  std::array<char, 32> hex{};
  std::snprintf(hex.data(), hex.size(), "0x%lx", static_cast<unsigned long>(rv));
  for (const CkrName& entry : kCkrNames) {
    if (entry.rv == rv) return str_cat(entry.name, " (", hex.data(), ")");
  }
  return str_cat("CKR ", hex.data());
}

Pkcs11Module::Pkcs11Module(std::string path) : path_(std::move(path)) {
  // RTLD_LOCAL: the module's own OpenSSL (SoftHSM links libcrypto) must not interpose on ours.
  handle_ = ::dlopen(path_.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle_ == nullptr) {
    const char* why = ::dlerror();
    throw UsageError(str_cat("cannot load PKCS#11 module '", path_, "': ", why ? why : "dlopen failed"));
  }
  auto get_function_list = reinterpret_cast<CK_C_GetFunctionList>(::dlsym(handle_, "C_GetFunctionList"));
  if (get_function_list == nullptr || get_function_list(&api_) != CKR_OK || api_ == nullptr) {
    ::dlclose(handle_);
    throw UsageError(str_cat("'", path_, "' is not a PKCS#11 module (no usable C_GetFunctionList)"));
  }
  // OS locking: key providers may be used from several threads.
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = api_->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    ::dlclose(handle_);
    throw SystemError(str_cat(path_, ": C_Initialize failed: ", ckr_name(rv)));
  }
  finalize_ = rv == CKR_OK;
}

Pkcs11Module::~Pkcs11Module() {
  if (finalize_) api_->C_Finalize(nullptr);
  ::dlclose(handle_);
}

void Pkcs11Module::check(CK_RV rv, const char* function) const {
  if (rv != CKR_OK) throw SystemError(str_cat(path_, ": ", function, " failed: ", ckr_name(rv)));
}

std::shared_ptr<Pkcs11Module> load_pkcs11_module(const std::string& path) {
  // A module may be C_Initialize'd once per process: share it among providers.
  static std::mutex mutex;
  static std::map<std::string, std::weak_ptr<Pkcs11Module>> loaded;
  std::lock_guard lock(mutex);
  if (std::shared_ptr<Pkcs11Module> module = loaded[path].lock()) return module;
  auto module = std::make_shared<Pkcs11Module>(path);
  loaded[path] = module;
  return module;
}

Pkcs11Session::Pkcs11Session(std::shared_ptr<Pkcs11Module> module, CK_SLOT_ID slot)
    : module_(std::move(module)) {
  module_->check(api()->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &session_), "C_OpenSession");
}

Pkcs11Session::~Pkcs11Session() {
  if (session_ != CK_INVALID_HANDLE) api()->C_CloseSession(session_);
}

void Pkcs11Session::login(const SecretBytes& pin, const std::string& what) {
  const CK_RV rv = api()->C_Login(session_, CKU_USER, const_cast<CK_UTF8CHAR*>(pin.data()), pin.size());
  if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) return;
  if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID || rv == CKR_PIN_LEN_RANGE) {
    throw UsageError(str_cat(what, ": login refused: ", ckr_name(rv)));
  }
  module_->check(rv, "C_Login");
}

}  // namespace albion::checkpoint
