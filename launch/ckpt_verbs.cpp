// File: launch/ckpt_verbs.cpp
// `albion ckpt list | inspect | verify | rotate-key`. Every verb that uses a key appends a record
// to the run's audit log (by default audit.jsonl of the run directory holding the checkpoint,
// i.e. CKPT/../../audit.jsonl; --audit names another), failures included.
#include <iomanip>
#include <iostream>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/format/checkpoint_directory.h"
#include "checkpoint/format/checkpoint_paths.h"
#include "checkpoint/format/checkpoint_reader.h"
#include "checkpoint/format/manifest.h"
#include "checkpoint/io/atomic_file.h"
#include "launch/ckpt_verbs.h"
#include "runtime/base/check.h"
#include "runtime/base/progress.h"

namespace albion::launch {

namespace fs = std::filesystem;
using checkpoint::AuditAction;
using checkpoint::AuditOutcome;

fs::path default_audit_log(const fs::path& checkpoint) {
  return fs::absolute(checkpoint).lexically_normal().parent_path().parent_path() / "audit.jsonl";
}

namespace {

// Runs `action`, recording its outcome (and a failure's one-line reason) in the audit log.
template <typename Action>
int audited(const fs::path& log, AuditAction what, const fs::path& path, const std::string& key_id, Action action) {
  ALBION_CHECK_AS(UsageError, fs::is_directory(path), path.string(), ": no such checkpoint directory");
  checkpoint::AuditLog audit(log, checkpoint::current_audit_identity(read_process_environment()));
  try {
    const int code = action();
    audit.append({what, path.string(), key_id, AuditOutcome::kOk, ""});
    return code;
  } catch (const std::exception& error) {
    audit.append({what, path.string(), key_id, AuditOutcome::kFailed, error.what()});
    throw;
  }
}

std::string human_bytes(std::uint64_t bytes) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(1);
  if (bytes >= (1ull << 30)) out << static_cast<double>(bytes) / (1ull << 30) << " GiB";
  else if (bytes >= (1ull << 20)) out << static_cast<double>(bytes) / (1ull << 20) << " MiB";
  else out << bytes << " B";
  return out.str();
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

void print_header(const checkpoint::CheckpointHeader& h) {
  std::cout << "  format         " << h.format << "\n"
            << "  step           " << h.step << "\n"
            << "  checkpoint id  " << h.checkpoint_id << "\n"
            << "  created        " << h.created << "\n"
            << "  cipher         " << h.cipher << "\n";
  if (h.encrypted()) std::cout << "  key id         " << h.key_id << "\n";
  std::cout << "  chunk size     " << human_bytes(h.chunk_bytes) << "\n";
}

}  // namespace

int run_ckpt_list(const CommandArgs& args, const CommandSpec& spec) {
  std::string dir;
  po::options_description options("options");
  options.add_options()("dir", po::value(&dir)->value_name("DIR"), "a checkpoint directory (run.dir/checkpoints)");
  po::positional_options_description positional;
  positional.add("dir", 1);
  if (!parse_command(args, spec, options, positional)) return 0;
  ALBION_CHECK_AS(UsageError, !dir.empty(), "ckpt list: missing DIR (usage: ", spec.usage, ")");
  ALBION_CHECK_AS(UsageError, fs::is_directory(dir), "ckpt list: '", dir, "' is not a directory");
  const std::optional<std::string> latest = checkpoint::read_latest(dir);
  const std::vector<checkpoint::CommittedCheckpoint> all = checkpoint::list_checkpoints(dir);
  std::cout << std::left << std::setw(16) << "CHECKPOINT" << std::setw(10) << "STEP" << std::setw(13) << "CIPHER"
            << std::setw(8) << "SHARDS" << std::setw(12) << "SIZE" << "CREATED\n";
  for (const checkpoint::CommittedCheckpoint& c : all) {
    const std::string name = c.path.filename().string();
    std::uint64_t bytes = 0;
    int shards = 0;
    for (const fs::directory_entry& entry : fs::directory_iterator(c.path)) {
      if (entry.is_regular_file()) bytes += entry.file_size();
      shards += entry.path().extension() == ".h5";
    }
    std::string cipher = "damaged";
    std::string created;
    try {
      const checkpoint::CheckpointHeader h =
          checkpoint::parse_manifest_header(checkpoint::read_manifest_text(c.path), name);
      cipher = h.cipher;
      created = h.created;
    } catch (const Error&) {
      // Listed, marked damaged: `ckpt verify` says what is wrong.
    }
    std::cout << std::setw(16) << name << std::setw(10) << c.step << std::setw(13) << cipher << std::setw(8)
              << shards << std::setw(12) << human_bytes(bytes) << created << (latest == name ? "  (latest)" : "")
              << "\n";
  }
  if (all.empty()) std::cout << "(no committed checkpoints in " << dir << ")\n";
  return 0;
}

int run_ckpt_inspect(const CommandArgs& args, const CommandSpec& spec) {
  std::string path;
  std::string key_spec;
  std::string audit_log;
  po::options_description options("options");
  options.add_options()("checkpoint", po::value(&path)->value_name("CKPT"), "a checkpoint (a step-N directory)")(
      "key", po::value(&key_spec)->value_name("SPEC"), "its key (file:, env:, pkcs11:) to show the tensor index")(
      "audit", po::value(&audit_log)->value_name("LOG"), "audit log (default: CKPT/../../audit.jsonl)");
  po::positional_options_description positional;
  positional.add("checkpoint", 1);
  if (!parse_command(args, spec, options, positional)) return 0;
  ALBION_CHECK_AS(UsageError, !path.empty(), "ckpt inspect: missing CKPT (usage: ", spec.usage, ")");
  const std::string text = checkpoint::read_manifest_text(path);
  const checkpoint::CheckpointHeader header = checkpoint::parse_manifest_header(text, path);
  std::cout << "checkpoint " << path << "\n";
  print_header(header);
  if (key_spec.empty() && header.encrypted()) {
    std::cout << "(pass --key to authenticate the manifest and show the tensor index)\n";
    return 0;
  }
  std::unique_ptr<checkpoint::KeyProvider> key;
  if (!key_spec.empty()) key = checkpoint::open_key_provider(key_spec);
  const fs::path log = audit_log.empty() ? default_audit_log(path) : fs::path(audit_log);
  return audited(log, AuditAction::kLoad, path, key ? key->key_id() : "", [&] {
    checkpoint::CheckpointReader reader(path, header.encrypted() ? key.get() : nullptr);
    const checkpoint::CheckpointManifest& m = reader.manifest();
    std::cout << "  world          " << m.world_size << " rank(s), " << m.data_parallel_size << " data-parallel\n"
              << "  state          " << m.state_json << "\n"
              << "  shards\n";
    for (const checkpoint::ShardRecord& s : m.shards) {
      std::cout << "    " << s.file << "  " << human_bytes(s.file_bytes) << "  " << s.slices.size()
                << " slice(s)  sha256 " << s.sha256 << "\n";
    }
    std::cout << "  tensors\n";
    for (const checkpoint::TensorInfo& t : reader.tensors()) {
      std::cout << "    " << std::left << std::setw(48) << t.name << std::setw(6) << t.dtype << shape_text(t.global_shape)
                << (t.transposed ? "  stored transposed" : "") << "\n";
    }
    return 0;
  });
}

int run_ckpt_verify(const CommandArgs& args, const CommandSpec& spec) {
  std::string path;
  std::string key_spec;
  std::string audit_log;
  po::options_description options("options");
  options.add_options()("checkpoint", po::value(&path)->value_name("CKPT"), "a checkpoint (a step-N directory)")(
      "key", po::value(&key_spec)->value_name("SPEC"), "its key: file:PATH, env:VAR or pkcs11:URI")(
      "audit", po::value(&audit_log)->value_name("LOG"), "audit log (default: CKPT/../../audit.jsonl)");
  po::positional_options_description positional;
  positional.add("checkpoint", 1);
  if (!parse_command(args, spec, options, positional)) return 0;
  ALBION_CHECK_AS(UsageError, !path.empty(), "ckpt verify: missing CKPT (usage: ", spec.usage, ")");
  std::unique_ptr<checkpoint::KeyProvider> key;
  if (!key_spec.empty()) key = checkpoint::open_key_provider(key_spec);
  const fs::path log = audit_log.empty() ? default_audit_log(path) : fs::path(audit_log);
  return audited(log, AuditAction::kVerify, path, key ? key->key_id() : "", [&] {
    checkpoint::CheckpointReader reader(path, key.get());
    ProgressBar bar("verify", static_cast<double>(reader.verify_all_bytes()), "MB", 1e6,
                    read_process_environment().stderr_is_terminal);
    reader.verify_all([&](std::uint64_t bytes) { bar.advance(static_cast<double>(bytes)); });
    bar.finish();
    std::uint64_t bytes = 0;
    std::uint64_t chunks = 0;
    for (const checkpoint::ShardRecord& s : reader.manifest().shards) {
      bytes += s.file_bytes;
      for (const checkpoint::SliceRecord& slice : s.slices) chunks += slice.chunk_count;
    }
    std::cout << "checkpoint " << path << ": manifest authenticated, " << reader.manifest().shards.size()
              << " shard(s) (" << human_bytes(bytes) << ") match their digests, " << chunks << " chunk(s) "
              << (reader.manifest().header.encrypted() ? "authenticated" : "read (plaintext: digests only)") << "\n";
    return 0;
  });
}

int run_ckpt_rotate_key(const CommandArgs& args, const CommandSpec& spec) {
  std::string path;
  std::string old_spec;
  std::string new_spec;
  std::string audit_log;
  po::options_description options("options");
  options.add_options()("checkpoint", po::value(&path)->value_name("CKPT"), "a checkpoint (a step-N directory)")(
      "key", po::value(&old_spec)->value_name("OLD"), "the key it is encrypted under now")(
      "new-key", po::value(&new_spec)->value_name("NEW"), "the key to wrap its data key under")(
      "audit", po::value(&audit_log)->value_name("LOG"), "audit log (default: CKPT/../../audit.jsonl)");
  po::positional_options_description positional;
  positional.add("checkpoint", 1);
  if (!parse_command(args, spec, options, positional)) return 0;
  ALBION_CHECK_AS(UsageError, !path.empty() && !old_spec.empty() && !new_spec.empty(),
                  "ckpt rotate-key: needs CKPT, --key and --new-key (usage: ", spec.usage, ")");
  const std::unique_ptr<checkpoint::KeyProvider> old_key = checkpoint::open_key_provider(old_spec);
  const std::unique_ptr<checkpoint::KeyProvider> new_key = checkpoint::open_key_provider(new_spec);
  const fs::path log = audit_log.empty() ? default_audit_log(path) : fs::path(audit_log);
  return audited(log, AuditAction::kKeyRotation, path, new_key->key_id(), [&] {
    // Authenticate everything under the old key first: never re-wrap a key for a damaged checkpoint.
    const checkpoint::CheckpointReader reader(path, old_key.get());
    const std::string text = checkpoint::read_manifest_text(path);
    const checkpoint::CheckpointHeader header = checkpoint::parse_manifest_header(text, path);
    const checkpoint::DataKey dek = old_key->unwrap(header.wrapped_key);
    const std::string rewrapped = checkpoint::rewrap_manifest(text, new_key->key_id(), new_key->wrap(dek), path);
    checkpoint::write_file_atomically(fs::path(path) / checkpoint::kManifestFileName, rewrapped,
                                      checkpoint::ExistingFile::kReplace);
    checkpoint::CheckpointReader check(path, new_key.get());  // opens under the new key
    std::cout << "checkpoint " << path << ": data key re-wrapped from key id " << old_key->key_id() << " to "
              << new_key->key_id() << " (no data re-encrypted)\n";
    return 0;
  });
}

}  // namespace albion::launch
