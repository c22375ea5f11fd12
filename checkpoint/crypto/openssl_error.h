// File: checkpoint/crypto/openssl_error.h
// Turning a failed OpenSSL call into albion::SystemError: the message names what we were doing and
// carries OpenSSL's error queue (ERR_error_string_n), which describes the failure without ever
// containing key bytes. Every OpenSSL call in checkpoint/ is checked through these.
#pragma once

#include <string>

#include "runtime/base/check.h"

namespace albion::checkpoint {

// Drains this thread's OpenSSL error queue into one line ("error:...; error:..."), or
// "no OpenSSL error queued" when it is empty.
std::string drain_openssl_errors();

// Throws SystemError("<what> failed: <queue>").
[[noreturn]] void throw_openssl_error(const std::string& what);

// Discards the queue after an expected failure (e.g. a tag mismatch we report as IntegrityError),
// so a stale entry cannot be blamed on a later, unrelated call.
void clear_openssl_errors();

}  // namespace albion::checkpoint
