// File: runtime/config/recipe.h
// A training recipe: every `section.key` of the INI files in recipes/, as typed fields with their
// defaults. Each key is declared exactly once, in recipe_schema.cpp, with its field, default and
// help text; the INI parser, the `--section.key=value` command-line overrides, `albion train
// --help` and the resolved recipe written to the run directory all come from that declaration.
// Recipe::validate() checks the rules that span fields, before any work starts.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

namespace albion::config {

// The longest text sample (eval.sample_tokens, `albion generate --tokens`).
inline constexpr std::int64_t kMaxSampleTokens = 65536;

struct RunConfig {
  std::string name = "run";
  std::string dir = "runs/run";  // run directory: metrics.jsonl, TensorBoard events, checkpoints
  std::uint64_t seed = 1234;
  std::string device = "auto";   // auto (CUDA if present), cpu, cuda
};

struct ModelSection {
  std::string preset = "tiny";   // runtime/models/model_config.h presets
  std::int64_t context_length = 0;  // 0: the preset's
  std::int64_t vocab_size = 0;      // 0: the preset's (or its tokenizer's, padded); larger: padded rows
  bool fused_kernels = true;         // on GPU, Albion's fused kernels (kernels/); false: plain torch ops
  std::int64_t activation_checkpointing = 0;  // recompute every Nth block in the backward pass; 0: off
  std::string init;                  // a Hugging Face model directory to start from; empty: random init
};

// Low-rank adapters on a frozen model.init (runtime/models/lora.h); rank 0: full fine-tuning.
struct LoraConfig {
  std::int64_t rank = 0;
  double alpha = 16;                   // the adapters' output is scaled by alpha / rank
  double dropout = 0;                  // on the adapters' input while training
  std::string targets = "all-linear";  // comma-separated layer names (q_proj, attn.c_proj, ...)
};

struct DataConfig {
  std::string dataset;               // a prepared dataset directory (albion data prepare)
  std::string key;                   // key spec of an encrypted dataset (file:, env:, pkcs11:)
  // When `dataset` does not exist yet and `inputs` is set, the trainer prepares it first.
  std::string inputs;                // comma-separated files or directories
  std::string tokenizer = "byte";    // tokenizer spec (runtime/tokenizers/tokenizer.h)
  std::string format = "text";       // text, jsonl or chat (runtime/data/document_reader.h)
  std::string chat_template = "chatml";  // chat: llama3, llama3.1, chatml, qwen2.5 or none (runtime/data/chat_record.h)
  double val_fraction = 0.1;
  std::uint64_t text_document_bytes = 65536;
  // Attend only within each document of a sequence, its positions counted from 0 (Note [Attention
  // within documents], runtime/models/causal_lm.h); false: across documents, as pretraining does.
  bool document_masking = false;
  // How training sequences are cut: "stream" (windows at fixed offsets of the documents laid end to
  // end) or "documents" (whole documents packed per sequence, runtime/data/document_packing.h).
  std::string packing = "stream";

  bool packs_documents() const { return packing == "documents"; }
};

struct TrainConfig {
  std::int64_t seq_len = 256;
  std::int64_t micro_batch = 8;            // sequences per rank per forward/backward
  std::int64_t global_batch_tokens = 16384;  // tokens per optimizer step over all ranks
  std::int64_t steps = 1000;

  // Micro-batches per optimizer step on `data_parallel_ranks` ranks; UsageError naming
  // train.global_batch_tokens unless it is a whole number of micro_batch x seq_len x ranks.
  std::int64_t accumulation_steps(int data_parallel_ranks) const;
};

struct OptimConfig {
  // adamw, or muon: the hidden layers' matrices by Muon (runtime/optim/muon.h), the rest by AdamW,
  // with one learning rate, schedule and weight decay.
  std::string name = "adamw";
  double muon_momentum = 0.95;
  double lr = 1e-3;
  double min_lr = 1e-4;
  std::int64_t warmup_steps = 100;
  std::string schedule = "cosine";  // cosine, wsd (warmup-stable-decay), constant
  double decay_fraction = 0.2;      // wsd: final fraction of steps spent decaying to min_lr
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double grad_clip = 1.0;           // global-norm clipping; 0 disables
  bool decay_embeddings = false;
};

struct EvalConfig {
  std::int64_t interval = 100;  // steps between validation losses; 0 disables
  std::int64_t batches = 10;    // validation micro-batches, shared by the data-parallel ranks
  std::int64_t sample_interval = 0;  // steps between text samples; 0: only at the end
  std::int64_t sample_tokens = 200;
  std::string sample_prompt = "\n";
  std::int64_t top_k = 40;
  double top_p = 1.0;  // nucleus sampling after top_k; 1: off
  double temperature = 0.8;
  // Multiple-choice questions (JSON Lines, as `albion eval --choices` reads them, HellaSwag's
  // included) answered at each evaluation, shared by the data-parallel ranks; "": none.
  std::string choices;
  std::int64_t choices_limit = 0;  // the first N questions; 0: all
};

struct LogConfig {
  std::int64_t interval = 10;  // steps between metric records
  bool tensorboard = true;
};

struct ProfileConfig {
  std::int64_t steps = 0;       // steps recorded by torch's profiler; 0: none
  std::int64_t start_step = 4;  // first recorded step, from 1 as in the log (after warm-up)
};

struct PrecisionConfig {
  std::string dtype = "auto";  // auto (bf16 on GPU, fp32 on CPU), fp32, bf16
  bool allow_tf32 = true;
};

struct ParallelConfig {
  std::string backend = "auto";  // auto (NCCL for CUDA, MPI for CPU), mpi, nccl
  std::int64_t tensor = 1;       // tensor-parallel degree (innermost mesh dimension)
  bool sequence = true;          // with tensor > 1: each rank holds 1/tensor of the tokens between layers
  std::int64_t pipeline = 1;     // pipeline-parallel degree; data = world / (tensor x pipeline)
  std::int64_t zero = 0;         // 0: DDP; 1: ZeRO-1 (optimizer state sharded); 2: ZeRO-2 (and gradients)
  double bucket_mb = 25;         // DDP's and ZeRO's gradient bucket size
  bool overlap = true;           // DDP: start each bucket's all-reduce during backward
  double timeout_s = 600;        // a collective not done in this time aborts every rank
};

struct CheckpointConfig {
  std::int64_t interval = 0;         // steps between checkpoints; 0: no checkpoints, no resume
  std::string dir = "checkpoints";   // relative paths are inside run.dir
  std::int64_t keep = 3;             // committed checkpoints kept; 0 keeps all
  std::string key;                   // key spec (file:, env:, pkcs11:) of the KEK
  std::string policy;                // residency policy file (JSON): which storage may hold them
  bool plaintext = false;            // unencrypted checkpoints, only where the policy allows them
  bool async = true;                 // write in the background while training continues
  std::int64_t threads = 2;          // encryption threads per rank
};

struct Recipe {
  RunConfig run;
  ModelSection model;
  LoraConfig lora;
  DataConfig data;
  TrainConfig train;
  OptimConfig optim;
  EvalConfig eval;
  LogConfig log;
  ProfileConfig profile;
  PrecisionConfig precision;
  ParallelConfig parallel;
  CheckpointConfig checkpoint;

  // Cross-field rules for one process; the trainer checks the rules that need the world size and
  // the model (divisibility of the global batch, sequence vs context length).
  void validate() const;
};

// Reads `path` (INI) and applies `overrides` ("--section.key=value" arguments) on top.
// Unknown keys, bad values and validation failures are one-line UsageErrors naming the file and
// key and suggesting the nearest valid key.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides);
// The same from INI text already read (a checkpoint's stored recipe); `source` names it in errors.
Recipe parse_recipe(std::istream& ini, const std::string& source, const std::vector<std::string>& overrides);

// Every key with its current value, as an INI file that load_recipe reads back to the same Recipe,
// except a PKCS#11 PIN in a key spec, which is not shown (runtime/base/redact.h): this text is
// printed, written to the run directory and stored in checkpoints.
std::string resolved_recipe_ini(const Recipe& recipe);

// Help text: every key, its default and what it means.
std::string recipe_help();

}  // namespace albion::config
