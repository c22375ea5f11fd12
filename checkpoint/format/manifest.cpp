// File: checkpoint/format/manifest.cpp
#include "checkpoint/format/manifest.h"

#include "checkpoint/crypto/chunk_cipher.h"
#include "checkpoint/crypto/hex.h"
#include "checkpoint/format/checkpoint_paths.h"
#include "checkpoint/format/json_fields.h"
#include "runtime/base/check.h"

namespace albion::checkpoint {
namespace {

using Json = nlohmann::json;

constexpr const char* kManifestChunkFile = "manifest.json";
constexpr const char* kManifestChunkTensor = "manifest";

// The header fields the sealed body repeats: all but the key wrapping, which `ckpt rotate-key`
// replaces without re-sealing the body (re-sealing would reuse the body's nonce under the same
// DEK with new plaintext). A wrapped key cannot be edited unnoticed anyway: RFC 5649 checks it on
// unwrapping, and only the right DEK opens the body.
Json authenticated_header_json(const CheckpointHeader& h) {
  return Json{{"format", h.format},   {"step", h.step},     {"checkpoint_id", h.checkpoint_id},
              {"created", h.created}, {"cipher", h.cipher}, {"chunk_bytes", h.chunk_bytes}};
}

Json header_json(const CheckpointHeader& h) {
  Json out = authenticated_header_json(h);
  out["key_id"] = h.key_id;
  out["wrapped_key"] = to_hex(h.wrapped_key);
  return out;
}

CheckpointHeader header_from(const JsonFields& f, bool with_key_fields = true) {
  CheckpointHeader h;
  h.format = f.string("format");
  if (h.format != kCheckpointFormat && h.format != kCheckpointFormatV1) {
    f.fail("format", "unsupported '" + h.format + "', expected " + kCheckpointFormat);
  }
  h.step = f.integer("step");
  if (h.step < 0) f.fail("step", "is negative");
  h.checkpoint_id = f.hex_string("checkpoint_id", 32);
  h.created = f.string("created");
  h.cipher = f.string("cipher");
  if (h.cipher != kChunkCipherName && h.cipher != kPlaintextCipher) f.fail("cipher", "unsupported '" + h.cipher + "'");
  if (with_key_fields) {
    h.key_id = f.string("key_id");
    h.wrapped_key = f.hex_bytes("wrapped_key");
  }
  h.chunk_bytes = f.unsigned_integer("chunk_bytes");
  if (h.chunk_bytes == 0 || h.chunk_bytes > (1ull << 32)) f.fail("chunk_bytes", "out of range");
  return h;
}

Json shard_json(const ShardRecord& s) {
  Json slices = Json::array();
  for (const SliceRecord& r : s.slices) {
    Json slice = {{"name", r.name}, {"dtype", r.dtype}, {"global_shape", r.global_shape}, {"offset", r.offset},
                  {"numel", r.numel}, {"first_chunk", r.first_chunk}, {"chunk_count", r.chunk_count},
                  {"data_position", r.data_position}};
    if (r.transposed) slice["transposed"] = true;  // format 2; absent means row by row, as in format 1
    slices.push_back(std::move(slice));
  }
  return {{"file", s.file}, {"index", s.index}, {"file_bytes", s.file_bytes}, {"sha256", s.sha256},
          {"data_offset", s.data_offset}, {"data_bytes", s.data_bytes}, {"tensors", slices}};
}

ShardRecord shard_from(const JsonFields& f) {
  ShardRecord s;
  s.file = f.string("file");
  const std::uint64_t index = f.unsigned_integer("index");
  if (index >= kManifestFileIndex) f.fail("index", "out of range");
  s.index = static_cast<std::uint32_t>(index);
  if (s.file != shard_file_name(s.index)) f.fail("file", "'" + s.file + "' is not the name of shard " + std::to_string(index));
  s.file_bytes = f.unsigned_integer("file_bytes");
  s.sha256 = f.hex_string("sha256", 64);
  s.data_offset = f.unsigned_integer("data_offset");
  s.data_bytes = f.unsigned_integer("data_bytes");
  for (const Json& entry : f.array("tensors")) {
    JsonFields t(entry, f.what() + ": " + s.file + " tensor");
    SliceRecord r;
    r.name = t.string("name");
    r.dtype = t.string("dtype");
    r.global_shape = t.integers("global_shape");
    r.offset = t.integer("offset");
    r.numel = t.integer("numel");
    r.first_chunk = t.unsigned_integer("first_chunk");
    r.chunk_count = t.unsigned_integer("chunk_count");
    r.data_position = t.unsigned_integer("data_position");
    r.transposed = t.has("transposed") && t.boolean("transposed");
    s.slices.push_back(std::move(r));
  }
  return s;
}

}  // namespace

std::string serialize_manifest(const CheckpointManifest& m, const DataKey* key) {
  ALBION_CHECK((key != nullptr) == m.header.encrypted(), "checkpoint: manifest key does not match its cipher");
  Json shards = Json::array();
  for (const ShardRecord& s : m.shards) shards.push_back(shard_json(s));
  Json state = parse_untrusted_json(m.state_json, "checkpoint state");
  ALBION_CHECK(state.is_object(), "checkpoint: trainer state must be a JSON object");
  Json body = {{"header", authenticated_header_json(m.header)},
               {"world", {{"size", m.world_size}, {"data_parallel_size", m.data_parallel_size}}},
               {"recipe", m.recipe},
               {"state", state},
               {"shards", shards}};
  Json root = header_json(m.header);
  if (key == nullptr) {
    root["body"] = body;
  } else {
    const std::string text = body.dump();
    ChunkCipher cipher(*key, m.header.checkpoint_id);
    const std::vector<std::uint8_t> sealed = cipher.seal(
        {kManifestChunkFile, kManifestFileIndex, kManifestChunkTensor, 0},
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    root["sealed_body"] = to_hex(sealed);
  }
  return root.dump(2) + "\n";
}

CheckpointHeader parse_manifest_header(std::string_view text, const std::string& what) {
  const Json root = parse_untrusted_json(text, what);
  return header_from(JsonFields(root, what));
}

CheckpointManifest parse_manifest(std::string_view text, const DataKey* key, const std::string& what) {
  const Json root = parse_untrusted_json(text, what);
  const JsonFields top(root, what);
  CheckpointManifest m;
  m.header = header_from(top);
  ALBION_CHECK_AS(IntegrityError, (key != nullptr) == m.header.encrypted(), what,
                  m.header.encrypted() ? ": encrypted checkpoint opened without a key"
                                       : ": plaintext checkpoint opened with a key");
  Json body;
  if (key == nullptr) {
    body = top.at("body");
  } else {
    const std::vector<std::uint8_t> sealed = top.hex_bytes("sealed_body");
    ALBION_CHECK_AS(IntegrityError, sealed.size() >= kChunkTagBytes, what, ": sealed body too short");
    ChunkCipher cipher(*key, m.header.checkpoint_id);
    std::vector<std::uint8_t> plain;
    try {
      plain = cipher.open({kManifestChunkFile, kManifestFileIndex, kManifestChunkTensor, 0}, sealed);
    } catch (const IntegrityError&) {
      throw IntegrityError(str_cat(what, ": manifest authentication failed (edited, or from another checkpoint)"));
    }
    body = parse_untrusted_json(std::string_view(reinterpret_cast<const char*>(plain.data()), plain.size()), what);
  }
  const JsonFields b(body, what + " body");
  // The header in clear must be the one that was authenticated.
  const CheckpointHeader inner = header_from(JsonFields(b.at("header"), what + " body header"), false);
  ALBION_CHECK_AS(IntegrityError, authenticated_header_json(inner) == authenticated_header_json(m.header), what,
                  ": header does not match the authenticated body (edited)");
  const JsonFields world(b.at("world"), what + " world");
  const std::int64_t size = world.integer("size");
  const std::int64_t data_parallel = world.integer("data_parallel_size");
  ALBION_CHECK_AS(IntegrityError, size > 0 && size < (1 << 24) && data_parallel > 0 && data_parallel <= size, what,
                  ": implausible world layout");
  m.world_size = static_cast<int>(size);
  m.data_parallel_size = static_cast<int>(data_parallel);
  m.recipe = b.string("recipe");
  const Json& state = b.at("state");
  ALBION_CHECK_AS(IntegrityError, state.is_object(), what, ": field 'state': expected an object");
  m.state_json = state.dump();
  for (const Json& entry : b.array("shards")) {
    m.shards.push_back(shard_from(JsonFields(entry, what + " shard")));
  }
  ALBION_CHECK_AS(IntegrityError, m.shards.size() == static_cast<std::size_t>(m.world_size), what, ": ",
                  m.shards.size(), " shards for a world of ", m.world_size);
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    ALBION_CHECK_AS(IntegrityError, m.shards[i].index == i, what, ": shard ", i, " is out of order");
  }
  return m;
}

std::string shard_record_json(const ShardRecord& record) { return shard_json(record).dump(); }

ShardRecord parse_shard_record_json(std::string_view text, const std::string& what) {
  const Json root = parse_untrusted_json(text, what);
  return shard_from(JsonFields(root, what));
}

std::string rewrap_manifest(std::string_view text, const std::string& key_id,
                            const std::vector<std::uint8_t>& wrapped_key, const std::string& what) {
  Json root = parse_untrusted_json(text, what);
  header_from(JsonFields(root, what));  // well-formed before anything is replaced
  root["key_id"] = key_id;
  root["wrapped_key"] = to_hex(wrapped_key);
  return root.dump(2) + "\n";
}

}  // namespace albion::checkpoint
