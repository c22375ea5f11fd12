// File: checkpoint/crypto/data_key.cpp
#include "checkpoint/crypto/data_key.h"

#include "runtime/base/check.h"

namespace albion::checkpoint {

DataKey DataKey::generate() { return DataKey(SecretBytes::random(kDataKeyBytes)); }

DataKey DataKey::from_secret(SecretBytes secret) {
  ALBION_CHECK_AS(IntegrityError, secret.size() == kDataKeyBytes, "data key has ", secret.size(),
                  " bytes, expected ", kDataKeyBytes);
  return DataKey(std::move(secret));
}

}  // namespace albion::checkpoint
