// File: checkpoint/keys/local_key_provider.h
// The file: and env: providers: the KEK is held in this process, in SecretBytes that only this
// class can read, and wrap/unwrap run here with OpenSSL. Loading checks everything about the key
// source (permissions, size, hex) and reports problems without echoing any part of the key.
#pragma once

#include <string_view>

#include "checkpoint/crypto/secret_bytes.h"
#include "checkpoint/keys/key_provider.h"

namespace albion::checkpoint {

inline constexpr std::size_t kKekBytes = 32;

class LocalKeyProvider final : public KeyProvider {
 public:
  // `spec` is what messages print ("file:/keys/kek.bin"); `kek` must hold kKekBytes.
  LocalKeyProvider(std::string spec, SecretBytes kek);

  // file:PATH — see read_key_file for the checks.
  static std::unique_ptr<KeyProvider> from_file(std::string_view path);
  // env:VAR — 64 hex characters, read through albion::environment_variable().
  static std::unique_ptr<KeyProvider> from_environment(std::string_view variable);

  const std::string& spec() const override { return spec_; }
  const std::string& key_id() const override { return key_id_; }
  std::vector<std::uint8_t> wrap(const DataKey& dek) const override;
  DataKey unwrap(std::span<const std::uint8_t> wrapped) const override;

 private:
  std::string spec_;
  SecretBytes kek_;
  std::string key_id_;
};

}  // namespace albion::checkpoint
