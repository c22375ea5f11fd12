// File: checkpoint/crypto/chunk_cipher.cpp
#include "checkpoint/crypto/chunk_cipher.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <climits>

#include "checkpoint/crypto/openssl_error.h"

namespace albion::checkpoint {
namespace {

// Note [Chunk associated data]
// The associated data is a versioned, unambiguous encoding (every string length-prefixed, every
// integer fixed-width big-endian) of everything that says where a chunk belongs:
//   "albion-chunk-v1" || len32 checkpoint_id || checkpoint_id || len32 file_name || file_name
//   || u32 file_index || len32 tensor_name || tensor_name || u64 chunk_index || u64 length
// Length prefixes stop ("ab","c") and ("a","bc") from encoding alike. The checkpoint id defends
// against a chunk copied from another checkpoint even if a DEK were ever shared; the rest against
// chunks swapped or reordered within one. Changing this layout changes the version string.
constexpr std::string_view kAadDomain = "albion-chunk-v1";

// EVP lengths are ints; chunks are MiB, but never let a huge span overflow the cast.
constexpr std::size_t kMaxUpdateBytes = std::size_t{1} << 30;

template <std::size_t N>
void put_be(std::array<std::uint8_t, N>& out, std::size_t offset, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out[offset + i] = static_cast<std::uint8_t>(value >> (8 * (bytes - 1 - i)));
}

std::array<std::uint8_t, kChunkNonceBytes> chunk_nonce(const ChunkId& id) {
  std::array<std::uint8_t, kChunkNonceBytes> nonce{};
  put_be(nonce, 0, id.file_index, 4);
  put_be(nonce, 4, id.chunk_index, 8);
  return nonce;
}

void update_aad(EVP_CIPHER_CTX* ctx, const void* data, std::size_t size) {
  int written = 0;
  if (size > 0 && EVP_CipherUpdate(ctx, nullptr, &written, static_cast<const unsigned char*>(data),
                                   static_cast<int>(size)) != 1) {
    throw_openssl_error("EVP_CipherUpdate(associated data)");
  }
}

void update_aad_u64(EVP_CIPHER_CTX* ctx, std::uint64_t value, int bytes) {
  std::array<std::uint8_t, 8> be{};
  put_be(be, 0, value, bytes);
  update_aad(ctx, be.data(), static_cast<std::size_t>(bytes));
}

void update_aad_string(EVP_CIPHER_CTX* ctx, std::string_view text) {
  ALBION_CHECK(text.size() <= UINT32_MAX, "associated-data field of ", text.size(), " bytes");
  update_aad_u64(ctx, text.size(), 4);
  update_aad(ctx, text.data(), text.size());
}

// Runs the cipher over `in` into `out` (same length, may alias exactly) in EVP-sized pieces.
void update_data(EVP_CIPHER_CTX* ctx, std::span<const std::uint8_t> in, std::uint8_t* out,
                 const char* what) {
  for (std::size_t done = 0; done < in.size();) {
    const std::size_t piece = std::min(in.size() - done, kMaxUpdateBytes);
    int written = 0;
    if (EVP_CipherUpdate(ctx, out + done, &written, in.data() + done, static_cast<int>(piece)) != 1 ||
        static_cast<std::size_t>(written) != piece) {
      throw_openssl_error(what);
    }
    done += piece;
  }
}

CipherCtxPtr keyed_context(const EVP_CIPHER* cipher, const DataKey& key, int encrypt) {
  CipherCtxPtr ctx = new_cipher_ctx();
  ALBION_CHECK(key.secret().size() == kDataKeyBytes, "data key of ", key.secret().size(), " bytes");
  if (EVP_CipherInit_ex2(ctx.get(), cipher, key.secret().data(), nullptr, encrypt, nullptr) != 1) {
    throw_openssl_error("EVP_CipherInit_ex2(AES-256-GCM)");
  }
  // GCM's default nonce length is 96 bits, the one Note [Nonce uniqueness] fills.
  ALBION_CHECK(EVP_CIPHER_CTX_get_iv_length(ctx.get()) == static_cast<int>(kChunkNonceBytes),
               "AES-256-GCM nonce length ", EVP_CIPHER_CTX_get_iv_length(ctx.get()));
  return ctx;
}

}  // namespace

ChunkCipher::ChunkCipher(const DataKey& key, std::string checkpoint_id)
    : checkpoint_id_(std::move(checkpoint_id)) {
  CipherPtr cipher = fetch_cipher(kChunkCipherName);
  seal_ctx_ = keyed_context(cipher.get(), key, 1);
  open_ctx_ = keyed_context(cipher.get(), key, 0);
}

void ChunkCipher::add_associated_data(EVP_CIPHER_CTX* ctx, const ChunkId& id,
                                      std::uint64_t plaintext_size) {
  update_aad(ctx, kAadDomain.data(), kAadDomain.size());
  update_aad_string(ctx, checkpoint_id_);
  update_aad_string(ctx, id.file_name);
  update_aad_u64(ctx, id.file_index, 4);
  update_aad_string(ctx, id.tensor_name);
  update_aad_u64(ctx, id.chunk_index, 8);
  update_aad_u64(ctx, plaintext_size, 8);
}

std::string ChunkCipher::describe(const ChunkId& id) const {
  return str_cat("checkpoint ", checkpoint_id_, ", file '", id.file_name, "' (index ", id.file_index,
                 "), tensor '", id.tensor_name, "', chunk ", id.chunk_index);
}

void ChunkCipher::seal(const ChunkId& id, std::span<const std::uint8_t> plaintext,
                       std::span<std::uint8_t> sealed) {
  ALBION_CHECK(sealed.size() == sealed_size(plaintext.size()), "sealed buffer of ", sealed.size(),
               " bytes for a ", plaintext.size(), "-byte chunk, expected ", sealed_size(plaintext.size()));
  EVP_CIPHER_CTX* ctx = seal_ctx_.get();
  const auto nonce = chunk_nonce(id);
  if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), 1, nullptr) != 1) {
    throw_openssl_error("EVP_CipherInit_ex2(nonce)");
  }
  add_associated_data(ctx, id, plaintext.size());
  update_data(ctx, plaintext, sealed.data(), "EVP_CipherUpdate(seal)");
  int written = 0;
  if (EVP_CipherFinal_ex(ctx, sealed.data() + plaintext.size(), &written) != 1 || written != 0) {
    throw_openssl_error("EVP_CipherFinal_ex(seal)");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kChunkTagBytes),
                          sealed.data() + plaintext.size()) != 1) {
    throw_openssl_error("EVP_CTRL_GCM_GET_TAG");
  }
}

std::vector<std::uint8_t> ChunkCipher::seal(const ChunkId& id, std::span<const std::uint8_t> plaintext) {
  std::vector<std::uint8_t> sealed(sealed_size(plaintext.size()));
  seal(id, plaintext, sealed);
  return sealed;
}

void ChunkCipher::open(const ChunkId& id, std::span<const std::uint8_t> sealed,
                       std::span<std::uint8_t> plaintext) {
  ALBION_CHECK_AS(IntegrityError, sealed.size() >= kChunkTagBytes, describe(id), ": sealed chunk has ",
                  sealed.size(), " bytes, fewer than its ", kChunkTagBytes, "-byte tag (truncated)");
  const std::size_t size = sealed.size() - kChunkTagBytes;
  ALBION_CHECK(plaintext.size() == size, "plaintext buffer of ", plaintext.size(), " bytes for a ",
               size, "-byte chunk");
  EVP_CIPHER_CTX* ctx = open_ctx_.get();
  const auto nonce = chunk_nonce(id);
  if (EVP_CipherInit_ex2(ctx, nullptr, nullptr, nonce.data(), 0, nullptr) != 1) {
    throw_openssl_error("EVP_CipherInit_ex2(nonce)");
  }
  // Copied because EVP's ctrl interface takes a non-const pointer.
  std::array<std::uint8_t, kChunkTagBytes> tag{};
  std::copy_n(sealed.data() + size, kChunkTagBytes, tag.begin());
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(tag.size()), tag.data()) != 1) {
    throw_openssl_error("EVP_CTRL_GCM_SET_TAG");
  }
  add_associated_data(ctx, id, size);
  update_data(ctx, sealed.first(size), plaintext.data(), "EVP_CipherUpdate(open)");
  int written = 0;
  if (EVP_CipherFinal_ex(ctx, plaintext.data() + size, &written) != 1) {
    // GCM decrypts before it can check the tag: wipe what it wrote so no caller sees it.
    if (size > 0) OPENSSL_cleanse(plaintext.data(), size);
    clear_openssl_errors();
    throw IntegrityError(str_cat(describe(id), ": ", kChunkCipherName,
                                 " tag check failed (wrong key, or the chunk was modified, moved, "
                                 "or copied from another checkpoint)"));
  }
}

std::vector<std::uint8_t> ChunkCipher::open(const ChunkId& id, std::span<const std::uint8_t> sealed) {
  ALBION_CHECK_AS(IntegrityError, sealed.size() >= kChunkTagBytes, describe(id), ": sealed chunk has ",
                  sealed.size(), " bytes, fewer than its ", kChunkTagBytes, "-byte tag (truncated)");
  std::vector<std::uint8_t> plaintext(sealed.size() - kChunkTagBytes);
  open(id, sealed, plaintext);
  return plaintext;
}

}  // namespace albion::checkpoint
