// File: launch/ckpt_export.cpp
// `albion ckpt export CKPT --format safetensors|peft --out DIR --key SPEC --policy FILE`: the model's
// weights, authenticated and decrypted, in a Hugging Face layout (model.safetensors with
// transformers' parameter names, config.json; a LoRA checkpoint's adapters merged into their
// base; the tokenizer it was trained with, its chat template and sampling beside it:
// launch/export_tokenizer.h), or a LoRA checkpoint's adapters alone in PEFT's
// (runtime/models/peft_export.h). The
// output holds plaintext weights, so it goes only where the residency policy allows exports
// (refused with exit 2 and an audit record before any byte is written), is built in DIR.partial
// and renamed into place, and every export is audited.
#include <fstream>
#include <iostream>

#include "checkpoint/audit/audit_log.h"
#include "checkpoint/export/safetensors.h"
#include "checkpoint/residency/residency_policy.h"
#include "launch/checkpoint_model.h"
#include "launch/ckpt_verbs.h"
#include "launch/export_tokenizer.h"
#include "runtime/base/check.h"
#include "runtime/base/staging_directory.h"
#include "runtime/models/hf_export.h"
#include "runtime/models/lora.h"
#include "runtime/models/peft_export.h"

namespace albion::launch {

namespace fs = std::filesystem;
using checkpoint::AuditAction;
using checkpoint::AuditOutcome;

namespace {

void write_text_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  ALBION_CHECK_AS(SystemError, out.good(), path.string(), ": cannot write");
}

}  // namespace

int run_ckpt_export(const CommandArgs& args, const CommandSpec& spec) {
  std::string path;
  std::string format = "safetensors";
  std::string out;
  std::string key_spec;
  std::string policy_file;
  std::string audit_log;
  po::options_description options("options");
  options.add_options()("checkpoint", po::value(&path)->value_name("CKPT"), "a checkpoint (a step-N directory)")(
      "format", po::value(&format)->value_name("FORMAT"),
      "safetensors (a whole transformers model) or peft (a LoRA checkpoint's adapters alone)")(
      "out", po::value(&out)->value_name("DIR"), "output directory (must not exist)")(
      "key", po::value(&key_spec)->value_name("SPEC"), "the checkpoint's key: file:PATH, env:VAR or pkcs11:URI")(
      "policy", po::value(&policy_file)->value_name("FILE"), "residency policy that must allow DIR")(
      "audit", po::value(&audit_log)->value_name("LOG"), "audit log (default: CKPT/../../audit.jsonl)");
  po::positional_options_description positional;
  positional.add("checkpoint", 1);
  if (!parse_command(args, spec, options, positional)) return 0;
  ALBION_CHECK_AS(UsageError, !path.empty() && !out.empty() && !policy_file.empty(),
                  "ckpt export: needs CKPT, --out and --policy (usage: ", spec.usage, ")");
  ALBION_CHECK_AS(UsageError, format == "safetensors" || format == "peft", "ckpt export: --format '", format,
                  "' is not supported; expected safetensors or peft");
  const fs::path log = audit_log.empty() ? default_audit_log(path) : fs::path(audit_log);
  checkpoint::AuditLog audit(log, checkpoint::current_audit_identity(read_process_environment()));

  fs::path allowed;
  try {
    allowed = checkpoint::ResidencyPolicy::load(policy_file)
                  .require_allowed(out, checkpoint::StoragePurpose::kExport, /*plaintext=*/false);
  } catch (const checkpoint::ResidencyError& refusal) {
    audit.append({AuditAction::kRefusal, fs::path(out).string(), "", AuditOutcome::kRefused, refusal.what()});
    throw;
  }
  std::unique_ptr<checkpoint::KeyProvider> key;
  if (!key_spec.empty()) key = checkpoint::open_key_provider(key_spec);
  const std::string key_id = key ? key->key_id() : "";
  try {
    checkpoint::CheckpointReader reader(path, key.get());
    const bool peft = format == "peft";
    const CheckpointModel stored = read_checkpoint_model(reader, read_process_environment().stderr_is_terminal, peft);
    const models::ModelConfig& model = stored.config;
    ALBION_CHECK_AS(UsageError, !peft || !stored.lora_base.empty(), "ckpt export: --format peft exports LoRA "
                    "adapters, but ", path, " holds a whole model (use --format safetensors)");
    std::vector<models::HfTensor> exported;
    std::string config_json;
    if (peft) {
      models::PeftAdapter adapter = models::to_peft_adapter(model, stored.parameters, stored.recipe.lora.rank,
                                                            stored.recipe.lora.alpha, stored.recipe.lora.dropout,
                                                            stored.lora_base.directory);
      exported = std::move(adapter.tensors);
      config_json = std::move(adapter.config_json);
    } else {
      // A LoRA checkpoint's adapters are merged into their base: a plain model.
      exported = models::to_hugging_face(
          model, stored.lora_base.empty() ? stored.parameters
                                          : models::merged_parameters(
                                                *load_checkpoint_model(stored, weights_in(stored), at::kCPU, path)));
      config_json = models::hugging_face_config_json(model);
    }
    const std::vector<checkpoint::SafetensorsTensor> tensors = models::to_safetensors(exported);
    std::map<std::string, std::string> metadata = models::hugging_face_safetensors_metadata();
    metadata["albion_checkpoint_id"] = reader.manifest().header.checkpoint_id;
    metadata["albion_step"] = std::to_string(reader.manifest().header.step);
    const char* weights_file = peft ? "adapter_model.safetensors" : "model.safetensors";
    const char* config_file = peft ? "adapter_config.json" : "config.json";
    StagingDirectory staging(allowed.string(), Overwrite::kRefuse);
    checkpoint::write_safetensors(fs::path(staging.path()) / weights_file, tensors, metadata);
    write_text_file(fs::path(staging.path()) / config_file, config_json);
    std::string files = str_cat(weights_file, ", ", config_file);
    if (!peft) {
      const train::RecordedTokenizer tokenizer = train::recorded_tokenizer(reader.manifest().state_json);
      for (const std::string& name : export_tokenizer_and_sampling(tokenizer, stored.recipe.eval, staging.path())) {
        files += ", " + name;
      }
    }
    staging.commit();
    audit.append({AuditAction::kExport, allowed.string(), key_id, AuditOutcome::kOk,
                  str_cat("from ", path, " step ", reader.manifest().header.step)});
    std::cout << "exported " << tensors.size() << " tensor(s) of " << path << " to " << allowed.string() << " ("
              << files << ")\n";
    return 0;
  } catch (const std::exception& error) {
    audit.append({AuditAction::kExport, allowed.string(), key_id, AuditOutcome::kFailed, error.what()});
    throw;
  }
}

}  // namespace albion::launch
