// File: runtime/config/recipe_schema.cpp
// Every recipe key, declared once: name, field, help. Defaults are the field initialisers in
// recipe.h. Adding a key is one line here plus its field.
#include "runtime/config/recipe_schema.h"

#include <charconv>
#include <sstream>

#include "runtime/base/check.h"

namespace albion::config {
namespace {

namespace po = boost::program_options;

std::string format_value(const std::string& value) { return escape_recipe_string(value); }
std::string format_value(bool value) { return value ? "true" : "false"; }
std::string format_value(double value) {
  char text[64];
  auto result = std::to_chars(text, text + sizeof(text), value);  // shortest round-trip form
  return std::string(text, result.ptr);
}
template <typename Integer>
std::string format_value(Integer value) {
  return std::to_string(value);
}

}  // namespace

std::string unescape_recipe_string(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    switch (text[++i]) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case '\\': out += '\\'; break;
      default: out += '\\'; out += text[i]; break;
    }
  }
  return out;
}

std::string escape_recipe_string(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\\') out += "\\\\";
    else out += c;
  }
  return out;
}

template <typename T>
void RecipeSchema::key(const char* name, T& field, const char* help) {
  if constexpr (std::is_same_v<T, std::string>) {
    // Strings are decoded after parsing, so escapes work in INI files and on the command line.
    std::string* target = &field;
    options_.add_options()(
        name,
        po::value<std::string>()->default_value(format_value(field))->notifier(
            [target](const std::string& raw) { *target = unescape_recipe_string(raw); }),
        help);
  } else {
    options_.add_options()(name, po::value<T>(&field)->default_value(field, format_value(field)), help);
  }
  T* pointer = &field;
  printers_.emplace_back(name, [pointer] { return format_value(*pointer); });
}

RecipeSchema::RecipeSchema(Recipe& r) {
  key("run.name", r.run.name, "name of the run, shown in logs");
  key("run.dir", r.run.dir, "run directory: metrics.jsonl, TensorBoard events, recipe.ini");
  key("run.seed", r.run.seed, "seed of parameter initialisation, data order and sampling");
  key("run.device", r.run.device, "auto (CUDA when present), cpu, or cuda");

  key("model.preset", r.model.preset, "model preset: tiny, gpt2, gpt2-medium, gpt2-xl, llama-3.2-1b, ...");
  key("model.context_length", r.model.context_length, "maximum sequence length; 0 keeps the preset's");
  key("model.vocab_size", r.model.vocab_size, "rows of the token embedding and LM head; 0 keeps the preset's (or "
      "the tokenizer's, padded); more than the tokenizer's pads them with ids it never gives, e.g. GPT-2's "
      "50257 as 50304, which parallel.tensor can cut evenly; with model.init, the rows past its vocabulary are "
      "zero padding left out of every softmax (it scores as published), and an export drops them");
  key("model.init", r.model.init, "fine-tuning: a Hugging Face model directory (model.safetensors, or its "
      "sharded index) whose weights replace the random initialisation; the preset must match it");
  key("model.activation_checkpointing", r.model.activation_checkpointing,
      "recompute every Nth transformer block's activations in the backward pass instead of keeping "
      "them: less memory for one more forward of those blocks (0: off, 1: every block, 2: every "
      "second)");
  key("model.fused_kernels", r.model.fused_kernels, "on GPU, use Albion's fused kernels (LayerNorm, RMSNorm, RoPE, SwiGLU, bias+GELU, chunked cross-entropy, AdamW, gradient norm); false: plain torch ops, for comparison");

  key("lora.rank", r.lora.rank, "LoRA: train low-rank adapters of this rank on the frozen model.init "
      "weights instead of every weight; 0: full fine-tuning");
  key("lora.alpha", r.lora.alpha, "LoRA: the adapters' output is scaled by alpha / rank");
  key("lora.dropout", r.lora.dropout, "LoRA: dropout probability on the adapters' input while training");
  key("lora.targets", r.lora.targets, "LoRA: comma-separated layers to adapt, by name (q_proj, v_proj, "
      "c_attn, attn.c_proj, ...), or all-linear: every linear layer but the output head");

  key("data.dataset", r.data.dataset, "prepared token dataset directory (albion data prepare)");
  key("data.key", r.data.key, "key of an encrypted dataset: file:PATH, env:VAR or pkcs11:URI");
  key("data.inputs", r.data.inputs, "comma-separated text files or directories to prepare "
                                    "data.dataset from when it does not exist yet");
  key("data.tokenizer", r.data.tokenizer, "tokenizer spec used when preparing from data.inputs");
  key("data.format", r.data.format, "format of data.inputs: text, jsonl (field \"text\") or chat "
                                    "(messages or prompt/completion per line; trained on the answers)");
  key("data.chat_template", r.data.chat_template, "chat inputs: llama3, llama3.1 (also Llama 3.2 and 3.3), "
                                                  "chatml, qwen2.5, or none for a base model (prompt, then "
                                                  "completion and end-of-text)");
  key("data.val_fraction", r.data.val_fraction, "fraction of documents held out for validation");
  key("data.text_document_bytes", r.data.text_document_bytes,
      "when preparing text: cut files at blank lines into documents of about this size");
  key("data.document_masking", r.data.document_masking,
      "attend only within each document of a training sequence, its positions counted from 0 (fine-tuning "
      "on packed conversations: no answer sees another conversation); false: across documents, as "
      "pretraining does");
  key("data.packing", r.data.packing,
      "how sequences are cut: stream (fixed windows of the documents laid end to end: no padding, but a "
      "document may be split between two) or documents (whole documents packed per sequence, padded; only "
      "documents longer than a sequence are split)");

  key("train.seq_len", r.train.seq_len, "tokens per training sequence");
  key("train.micro_batch", r.train.micro_batch, "sequences per rank per forward/backward pass");
  key("train.global_batch_tokens", r.train.global_batch_tokens,
      "tokens per optimizer step over all ranks (gradient accumulation makes up the rest)");
  key("train.steps", r.train.steps, "optimizer steps");

  key("optim.name", r.optim.name, "adamw, or muon: the hidden layers' weight matrices updated by their "
      "orthogonalized momentum (Muon), embeddings, LM head, norms and biases by AdamW; one lr and weight decay");
  key("optim.muon_momentum", r.optim.muon_momentum, "Muon's (Nesterov) momentum");
  key("optim.lr", r.optim.lr, "peak learning rate");
  key("optim.min_lr", r.optim.min_lr, "learning-rate floor at the end of the schedule");
  key("optim.warmup_steps", r.optim.warmup_steps, "linear warmup steps");
  key("optim.schedule", r.optim.schedule, "after warmup: cosine, wsd (warmup-stable-decay) or constant");
  key("optim.decay_fraction", r.optim.decay_fraction, "wsd: fraction of steps spent decaying at the end");
  key("optim.weight_decay", r.optim.weight_decay, "AdamW decoupled weight decay (matrices only)");
  key("optim.beta1", r.optim.beta1, "AdamW beta1");
  key("optim.beta2", r.optim.beta2, "AdamW beta2");
  key("optim.eps", r.optim.eps, "AdamW epsilon");
  key("optim.grad_clip", r.optim.grad_clip, "clip the global gradient norm to this; 0 disables");
  key("optim.decay_embeddings", r.optim.decay_embeddings, "also apply weight decay to embeddings");

  key("eval.interval", r.eval.interval, "steps between validation losses; 0 disables");
  key("eval.batches", r.eval.batches, "validation micro-batches per evaluation, shared by the data-parallel ranks, so val_loss is the same on any number of them (weighted by scored token, as albion eval's)");
  key("eval.sample_interval", r.eval.sample_interval, "steps between text samples; 0: only at the end");
  key("eval.sample_tokens", r.eval.sample_tokens, "tokens per text sample");
  key("eval.sample_prompt", r.eval.sample_prompt, "prompt of text samples (\\n for a newline)");
  key("eval.top_k", r.eval.top_k, "sample from the k most likely tokens; 0: greedy");
  key("eval.top_p", r.eval.top_p, "then from the fewest most likely tokens whose probabilities sum to top_p; 1: off");
  key("eval.temperature", r.eval.temperature, "sampling temperature");
  key("eval.choices", r.eval.choices, "multiple-choice questions (JSON Lines; HellaSwag's own file reads as is) "
      "answered at each evaluation: acc and acc_norm, as albion eval --choices reports them; empty: none");
  key("eval.choices_limit", r.eval.choices_limit, "answer only the first N of eval.choices' questions; 0: all");

  key("log.interval", r.log.interval, "steps between metric records");
  key("log.tensorboard", r.log.tensorboard, "also write TensorBoard event files");

  key("profile.steps", r.profile.steps, "steps to record with torch's profiler (0: none): per rank, a "
      "Chrome trace and a table of the costliest kernels and ops, in run.dir/profile/");
  key("profile.start_step", r.profile.start_step, "first recorded step, counted from 1 as in the log "
      "(the first steps warm up the allocator and autotuning)");

  key("precision.dtype", r.precision.dtype, "auto (bf16 on GPU, fp32 on CPU), fp32 or bf16");
  key("precision.allow_tf32", r.precision.allow_tf32, "allow TF32 matrix products on GPU");

  key("parallel.backend", r.parallel.backend, "collectives: auto (NCCL for CUDA, MPI for CPU), mpi or nccl");
  key("parallel.tensor", r.parallel.tensor, "tensor-parallel degree (innermost, inside a node)");
  key("parallel.sequence", r.parallel.sequence, "sequence parallelism: with parallel.tensor > 1, each rank holds 1/tensor of the tokens between the cut layers (norms, residuals, kept activations); false: all of them");
  key("parallel.pipeline", r.parallel.pipeline, "pipeline-parallel degree; data-parallel = ranks / (tensor x pipeline)");
  key("parallel.zero", r.parallel.zero, "0: DDP; 1: ZeRO-1, optimizer state sharded over data-parallel ranks; 2: ZeRO-2, gradients sharded too (reduce-scattered in buckets during every micro-batch's backward)");
  key("parallel.bucket_mb", r.parallel.bucket_mb, "gradient bucket size in MB (DDP's all-reduces, ZeRO's reduce-scatters)");
  key("parallel.overlap", r.parallel.overlap, "DDP: all-reduce each bucket as soon as backward fills it (ZeRO always does)");
  key("parallel.timeout_s", r.parallel.timeout_s, "seconds before a stuck collective aborts every rank");
  key("checkpoint.interval", r.checkpoint.interval, "steps between checkpoints (0: none); a run resumes from the newest");
  key("checkpoint.dir", r.checkpoint.dir, "checkpoint directory (relative: inside run.dir)");
  key("checkpoint.keep", r.checkpoint.keep, "committed checkpoints kept, oldest removed first (0: all)");
  key("checkpoint.key", r.checkpoint.key, "key-encryption key: file:PATH, env:VAR or pkcs11:URI");
  key("checkpoint.policy", r.checkpoint.policy, "residency policy file declaring the storage allowed to hold checkpoints");
  key("checkpoint.plaintext", r.checkpoint.plaintext, "unencrypted checkpoints (only where the policy allows them)");
  key("checkpoint.async", r.checkpoint.async, "encrypt and write in the background while training continues");
  key("checkpoint.threads", r.checkpoint.threads, "encryption threads per rank");
}

std::string RecipeSchema::to_ini() const {
  std::ostringstream out;
  std::string section;
  for (const auto& [name, print] : printers_) {
    const std::string this_section = name.substr(0, name.find('.'));
    if (this_section != section) {
      out << (section.empty() ? "" : "\n") << "[" << this_section << "]\n";
      section = this_section;
    }
    out << name.substr(name.find('.') + 1) << " = " << print() << "\n";
  }
  return out.str();
}

}  // namespace albion::config
