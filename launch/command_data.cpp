// File: launch/command_data.cpp
// `albion data prepare` and `albion data inspect`: turn text into token datasets and look at them.
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <thread>

#include "launch/cli.h"
#include "launch/command_options.h"
#include "checkpoint/audit/audit_log.h"
#include "checkpoint/keys/key_provider.h"
#include "checkpoint/residency/residency_policy.h"
#include "runtime/base/check.h"
#include "runtime/base/log.h"
#include "runtime/data/dataset_encryption.h"
#include "runtime/data/dataset_manifest.h"
#include "runtime/data/file_digest.h"
#include "runtime/data/prepare.h"
#include "runtime/data/sealed_token_shard.h"
#include "runtime/data/token_loader.h"
#include "runtime/data/token_shard.h"
#include "runtime/tokenizers/tokenizer.h"

namespace albion::launch {
namespace {

namespace fs = std::filesystem;
using checkpoint::AuditAction;
using checkpoint::AuditOutcome;

// Beside the residency policy: one log for every dataset written (or refused) under it, in a
// directory that exists, never inside a refused location.
fs::path default_dataset_audit_log(const fs::path& policy) {
  return fs::absolute(policy).lexically_normal().parent_path() / "audit.jsonl";
}

// The decoded sample with each run of trained-on tokens between [[ and ]], so a chat dataset shows
// at a glance which tokens its loss mask trains on.
std::string with_trained_runs_marked(const tokenizers::Tokenizer& tokenizer, std::span<const tokenizers::TokenId> ids,
                                     std::span<const std::uint8_t> loss_mask) {
  std::string out;
  std::size_t start = 0;
  while (start < ids.size()) {
    std::size_t end = start;
    while (end < ids.size() && loss_mask[end] == loss_mask[start]) ++end;
    const std::string text = tokenizer.decode(ids.subspan(start, end - start));
    out += loss_mask[start] ? "[[" + text + "]]" : text;
    start = end;
  }
  return out;
}

int run_prepare(const CommandArgs& args, const ProcessEnvironment& env) {
  const CommandSpec spec{
      "data prepare",
      "albion data prepare --input PATH... --output DIR --tokenizer SPEC [options]",
      "Tokenize text into a token dataset: HDF5 shards per split (train, val) and dataset.json.\n"
      "Inputs are files or directories. Tokenizer specs: byte, hf:PATH/tokenizer.json,\n"
      "gpt2:DIR (vocab.json + merges.txt), sentencepiece:PATH.model. The output appears only\n"
      "when complete (written as DIR.partial, then renamed). With --encrypt, nothing readable\n"
      "reaches the disk: tokens, offsets, masks and the manifest are sealed with AES-256-GCM;\n"
      "it needs --policy: DIR must lie under a storage root the residency policy allows, and the\n"
      "write (or the refusal, exit code 2 before anything is written) goes to an audit log."};
  data::PrepareOptions options;
  std::string format = "text";
  std::string policy_file;
  std::string audit_log;
  po::options_description described("options");
  described.add_options()
      ("input", po::value(&options.inputs)->required()->multitoken(), "input files or directories")
      ("output", po::value(&options.output)->required(), "dataset directory to create")
      ("tokenizer", po::value(&options.tokenizer_spec)->required(), "tokenizer spec")
      ("format", po::value(&format)->default_value("text"), "text, jsonl (field \"text\") or chat")
      ("chat-template", po::value(&options.chat_template)->default_value("chatml"),
       "chat format: llama3, llama3.1 (also for Llama 3.2 and 3.3 Instruct), chatml, qwen2.5 (ChatML with "
       "Qwen's default system message), or none for a base model (prompt/completion records, ended by "
       "the tokenizer's end-of-text)")
      ("val-fraction", po::value(&options.val_fraction)->default_value(0.0, "0"),
       "fraction of documents held out for validation")
      ("shard-tokens", po::value(&options.shard_tokens)->default_value(options.shard_tokens),
       "start a new shard after this many tokens")
      ("text-document-bytes", po::value(&options.text_document_bytes)->default_value(0),
       "text format: cut files at blank lines into documents of about this size (0: one per file)")
      ("seed", po::value(&options.seed)->default_value(options.seed), "seed of the train/val split")
      ("threads", po::value(&options.threads)->default_value(0), "tokenizer threads (0: one per core)")
      ("skip-bad-records", po::bool_switch(&options.skip_bad_records),
       "skip malformed records and count them instead of failing")
      ("overwrite", po::bool_switch(&options.overwrite), "replace an existing output directory")
      ("encrypt", po::value(&options.encrypt_key_spec),
       "encrypt shards and manifest at rest under this key: file:PATH, env:VAR or pkcs11:URI")
      ("policy", po::value(&policy_file),
       "residency policy (JSON) the output must satisfy; refused with exit code 2 before writing")
      ("audit", po::value(&audit_log)->value_name("LOG"),
       "with --policy: audit log of the write or refusal (default: audit.jsonl beside the policy)");
  auto parsed = parse_command(args, spec, described);
  if (!parsed) return 0;
  // Like checkpoints and exports, encrypted datasets hold private data: they are written only where
  // a residency policy allows, and every write or refusal is audited.
  ALBION_CHECK_AS(UsageError, options.encrypt_key_spec.empty() || !policy_file.empty(),
                  "data prepare: --encrypt needs --policy (encrypted datasets are written only under "
                  "storage a residency policy allows)");
  std::unique_ptr<checkpoint::AuditLog> audit;
  if (!policy_file.empty()) {
    const fs::path log = audit_log.empty() ? default_dataset_audit_log(policy_file) : fs::path(audit_log);
    audit = std::make_unique<checkpoint::AuditLog>(log, checkpoint::current_audit_identity(env));
    try {
      options.output = checkpoint::ResidencyPolicy::load(policy_file)
                           .require_allowed(options.output, checkpoint::StoragePurpose::kEncryptedDataset,
                                            /*plaintext=*/options.encrypt_key_spec.empty())
                           .string();
    } catch (const checkpoint::ResidencyError& refusal) {
      audit->append({AuditAction::kRefusal, options.output, "", AuditOutcome::kRefused, refusal.what()});
      throw;
    }
  }
  options.format = data::parse_input_format(format);
  options.show_progress = env.stderr_is_terminal;
  data::PrepareSummary summary;
  try {
    summary = data::prepare_dataset(options);
  } catch (const std::exception& error) {
    if (audit) audit->append({AuditAction::kSave, options.output, "", AuditOutcome::kFailed, error.what()});
    throw;
  }
  if (audit) {
    const std::optional<data::EncryptionHeader> header = data::read_encryption_header(options.output);
    audit->append({AuditAction::kSave, options.output, header ? header->key_id : "", AuditOutcome::kOk,
                   header ? "encrypted dataset" : "plaintext dataset"});
  }
  std::cout << "prepared " << options.output << ": " << summary.train_tokens << " train tokens in "
            << summary.train_documents << " documents, " << summary.val_tokens << " val tokens in "
            << summary.val_documents << " documents, " << summary.shards << " shard(s), "
            << std::fixed << std::setprecision(1) << summary.input_bytes / 1e6 << " MB in "
            << summary.seconds << " s (" << summary.input_bytes / 1e6 / std::max(summary.seconds, 1e-9)
            << " MB/s)";
  if (summary.skipped_records > 0) std::cout << ", " << summary.skipped_records << " bad records skipped";
  std::cout << "\n";
  return 0;
}

// How data.packing would cut the train split into sequences of `seq_len` (+1) tokens: the stream's
// windows and the documents they cut, or whole documents packed and the padding that costs.
void print_packing(const std::string& directory, const std::string& key_spec, std::int64_t seq_len) {
  data::LoaderOptions options;
  options.directory = directory;
  options.key_spec = key_spec;
  options.seq_len = seq_len;
  options.batch_size = 1;
  options.pack_documents = true;
  const data::TokenLoader loader(options);
  const std::vector<std::uint64_t> starts = loader.document_starts();
  const data::DocumentPacking& packing = *loader.packing();
  const std::uint64_t windows = (starts.back() - 1) / static_cast<std::uint64_t>(seq_len);
  const std::uint64_t fitting = packing.documents - packing.documents_cut;
  const std::uint64_t cut = data::documents_cut_by_windows(starts, packing.capacity);
  const double cut_percent = fitting == 0 ? 0.0 : 100.0 * static_cast<double>(cut) / static_cast<double>(fitting);
  std::cout << std::fixed << std::setprecision(1) << "packing      train split in sequences of " << seq_len
            << " tokens (data.packing):\n"
            << "  stream     " << windows << " windows, no padding; " << cut << " of the " << fitting
            << " documents that fit one (" << cut_percent << "%) cut between two\n"
            << "  documents  " << packing.size() << " sequences, "
            << packing.padding_percent() << "% padding; no document that fits cut, "
            << packing.documents_cut << " longer ones cut into pieces\n"
            << std::defaultfloat;
}

int run_inspect(const CommandArgs& args, const ProcessEnvironment&) {
  const CommandSpec spec{"data inspect", "albion data inspect DIR [--key SPEC] [--sample-tokens N] [--seq-len N]",
                         "Show a prepared dataset: counts, tokenizer, shards, and a decoded sample.\n"
                         "An encrypted dataset shows its public header only, unless --key is given.\n"
                         "With --seq-len, also how each data.packing would cut its train split."};
  std::string directory;
  std::string key_spec;
  int sample_tokens = 64;
  std::int64_t seq_len = 0;
  po::options_description described("options");
  described.add_options()("dir", po::value(&directory)->required(), "dataset directory")(
      "key", po::value(&key_spec), "key of an encrypted dataset: file:PATH, env:VAR or pkcs11:URI")(
      "sample-tokens", po::value(&sample_tokens)->default_value(64), "tokens to decode as a sample")(
      "seq-len", po::value(&seq_len), "also show data.packing's stream and documents at this train.seq_len");
  po::positional_options_description positional;
  positional.add("dir", 1);
  auto parsed = parse_command(args, spec, described, positional);
  if (!parsed) return 0;

  const std::optional<data::EncryptionHeader> header = data::read_encryption_header(directory);
  if (header && key_spec.empty()) {
    std::cout << "dataset      " << directory << "\n"
              << "encrypted    yes (" << header->cipher << ", key id " << header->key_id
              << ", dataset id " << header->dataset_id << ")\n"
              << "             pass --key to see its contents\n";
    return 0;
  }
  std::unique_ptr<checkpoint::KeyProvider> key;
  if (!key_spec.empty()) key = checkpoint::open_key_provider(key_spec);
  const data::DatasetManifest m = data::read_manifest(directory, key.get());
  std::cout << "dataset      " << directory << "\n"
            << "tokenizer    " << m.tokenizer_description << " (" << m.tokenizer_spec << ")\n"
            << "  hash       " << m.tokenizer_hash << "\n"
            << "vocab        " << m.vocab_size << ", tokens stored as " << token_width_name(m.token_width) << "\n"
            << "format       " << m.input_format
            << (m.chat_template.empty() ? "" : " (template " + m.chat_template + ")")
            << (m.has_loss_mask ? ", with loss mask" : "") << "\n"
            << "encrypted    " << (m.encrypted ? "yes, key id " + m.encryption->key_id : std::string("no")) << "\n"
            << "created      " << m.created_utc << "\n"
            << "sources      " << m.sources.size() << " file(s)\n";
  for (const auto& [name, split] : m.splits) {
    std::cout << std::left << std::setw(13) << name << split.tokens << " tokens, " << split.documents
              << " documents, " << split.shards.size() << " shard(s)\n";
  }
  ALBION_CHECK_AS(UsageError, seq_len >= 0, "data inspect: --seq-len must be positive, got ", seq_len);
  if (seq_len > 0) print_packing(directory, key_spec, seq_len);
  const auto train_split = m.splits.find("train");
  if (sample_tokens <= 0 || train_split == m.splits.end() || train_split->second.shards.empty()) return 0;
  const data::SplitEntry& train = train_split->second;
  const data::ShardEntry& first = train.shards.front();
  const std::string shard_path = (fs::path(directory) / first.file).string();
  ALBION_CHECK_AS(IntegrityError, data::sha256_file(shard_path) == first.sha256, shard_path,
                  ": SHA-256 does not match dataset.json");
  std::unique_ptr<data::ShardReader> shard;
  if (m.encrypted) {
    data::DatasetKey dataset_key = data::DatasetKey::open(*key, *m.encryption);
    shard = std::make_unique<data::SealedTokenShard>(
        shard_path, dataset_key.cipher(),
        data::SealedShardExpectation{first.file_index, m.token_width, m.vocab_size, first.tokens,
                                     first.documents, m.has_loss_mask, m.encryption->chunk_tokens});
  } else {
    shard = std::make_unique<data::TokenShard>(shard_path, m.token_width, m.vocab_size, first.tokens);
  }
  const std::uint64_t count = std::min<std::uint64_t>(static_cast<std::uint64_t>(sample_tokens), shard->token_count());
  std::vector<std::int64_t> wide(count);
  shard->copy_tokens(0, count, wide.data());
  std::vector<tokenizers::TokenId> ids(wide.begin(), wide.end());
  std::unique_ptr<tokenizers::Tokenizer> tokenizer;
  try {
    tokenizer = tokenizers::load_tokenizer(m.tokenizer_spec);
  } catch (const UsageError& e) {
    std::cout << "sample       (tokenizer not available here: " << e.what() << ")\n";
    return 0;
  }
  if (tokenizer->content_hash() != m.tokenizer_hash) {
    std::cout << "sample       (tokenizer at " << m.tokenizer_spec << " has changed since preparing)\n";
    return 0;
  }
  if (!m.has_loss_mask) {
    std::cout << "sample       " << count << " tokens of " << first.file << ":\n" << tokenizer->decode(ids) << "\n";
    return 0;
  }
  std::vector<std::uint8_t> loss_mask(count);
  shard->copy_loss_mask(0, count, loss_mask.data());
  const auto trained = std::count(loss_mask.begin(), loss_mask.end(), std::uint8_t{1});
  std::cout << "sample       " << count << " tokens of " << first.file << ", the " << trained
            << " trained on (loss mask 1) between [[ and ]]:\n"
            << with_trained_runs_marked(*tokenizer, ids, loss_mask) << "\n";
  return 0;
}

}  // namespace

int run_data(const CommandArgs& args, const ProcessEnvironment& env) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << "usage: albion data prepare|inspect [options]\n\n"
                 "  prepare   tokenize text, JSONL or chat data into a token dataset\n"
                 "  inspect   show a prepared dataset\n\n"
                 "Run 'albion data <verb> --help' for its options.\n";
    if (args.empty()) throw UsageError("data: missing verb (prepare or inspect)");
    return 0;
  }
  const CommandArgs rest(args.begin() + 1, args.end());
  if (args[0] == "prepare") return run_prepare(rest, env);
  if (args[0] == "inspect") return run_inspect(rest, env);
  throw UsageError(str_cat("data: unknown verb '", args[0], "' (expected prepare or inspect)"));
}

}  // namespace albion::launch
