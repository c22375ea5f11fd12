// File: runtime/train/trainer.h
// The training loop of `albion train`:
//
//   Trainer trainer(recipe, world, parallel, hooks);  // validate, data, model, optimizer, metrics
//   TrainSummary summary = trainer.train(stop_requested);
//
// train() reads as its phases: attach the parallelism -> resume -> for each step { accumulate
// micro-batches (forward, backward) -> parallelism step (gradients made global, clip, AdamW) ->
// log -> evaluate -> sample } -> final evaluation and sample. Data is sharded over the
// parallelism's data-parallel ranks; losses are means over them, the same on every rank. It stops
// cleanly at a step boundary when `stop_requested` becomes true (SIGINT/SIGTERM, set by launch/),
// and stops with an error on a non-finite loss.
//
// Note [Steps read one late]: a step queues its work on the device and returns its loss and
// gradient norm as device tensors (clipping happens on the device too, optim::clip_factor). The
// loop reads a step's numbers after queuing the next one, so the host waits for step N while the
// device already has step N+1 to run, instead of idling between steps. It reads at once where the
// step's end needs them: the first and last step, before an evaluation or a sample, and before a
// checkpoint (read_queued_steps), so no checkpoint holds a step whose loss diverged. A diverged
// step N is then reported after step N+1 ran, with nothing written in between. The numbers are
// copied to the host as the step ends (HostCopy): read by tensor.item(), a copy queued behind
// step N+1 would wait for it too. For the same reason the ranks' agreement to stop, a collective
// at each step's start, is read at the next step's start on a CUDA device, one step later.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/config/recipe.h"
#include "runtime/data/token_loader.h"
#include "runtime/models/causal_lm.h"
#include "runtime/models/lora.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/tokenizers/chat_template.h"
#include "runtime/tokenizers/tokenizer.h"
#include "runtime/train/choice_score.h"
#include "runtime/train/host_copy.h"
#include "runtime/train/parallelism.h"
#include "runtime/train/training_hooks.h"

namespace albion::metrics {
class MetricsWriter;
}

namespace albion::train {

class StepProfiler;

struct WorldPosition {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
};

// The weights LoRA adapters were trained on (recipe key model.init), as checkpoints record them.
struct LoraBase {
  std::string directory;  // absolute
  std::string sha256;     // models::hugging_face_weights_digest
  std::int64_t vocab_size = 0;  // of the model: its embedding is in the base, not the checkpoint
  bool empty() const { return sha256.empty(); }
};

struct TrainSummary {
  std::int64_t steps_done = 0;
  bool stopped_early = false;
  std::vector<double> losses;         // training loss of every step, in order
  std::vector<double> grad_norms;     // global gradient norm of every step, before clipping
  std::int64_t text_tokens = 0;       // inputs trained on over all ranks that are text, not padding
  std::optional<double> final_val_loss;
  std::optional<ChoiceTally> final_choices;  // eval.choices' answers at the last evaluation
  std::string final_sample;
  double seconds_to_first_step = 0;   // from construction to the end of step 0
};

// The model the recipe's [model] section describes: the preset, with model.context_length and
// model.fused_kernels applied. vocab_size stays 0 for a preset that takes it from the data.
models::ModelConfig recipe_model_config(const config::Recipe& recipe);
// Whether parameter `name` of `model` is updated by Muon (optim.name = muon): the hidden layers'
// weight matrices, not the embeddings or the LM head, which stay with AdamW like norms and biases.
bool takes_muon(const config::Recipe& recipe, const models::CausalLm& model, const std::string& name,
                const at::Tensor& parameter);
// The adapters the recipe's [lora] section describes (for lora.rank > 0).
models::LoraOptions recipe_lora_options(const config::Recipe& recipe);
// Whether the recipe's model runs under bf16 autocast on `device`: on CUDA, unless precision.dtype
// is fp32. The trainer trains, validates and samples so; `albion eval` and `generate` run so too
// (Note [Inference in the training's precision], runtime/models/bf16_inference.h).
bool runs_bf16_autocast(const config::Recipe& recipe, const at::Device& device);

// Prepares data.dataset from data.inputs when it does not exist yet. One process does this;
// with several ranks, rank 0 before the others construct their trainers.
void prepare_dataset_if_missing(const config::Recipe& recipe);

class Trainer {
 public:
  // `parallel` and `hooks` (either may be null: one process, no checkpoints) must outlive the
  // trainer.
  Trainer(config::Recipe recipe, WorldPosition world, Parallelism* parallel = nullptr,
          TrainingHooks* hooks = nullptr);
  ~Trainer();

  TrainSummary train(const std::atomic<bool>& stop_requested);

  // For the parallelism and the hooks (checkpoints).
  const config::Recipe& recipe() const { return recipe_; }
  models::CausalLm& model() { return *model_; }
  optim::AdamW& optimizer() { return *optimizer_; }
  data::TokenLoader& train_loader() { return *train_loader_; }
  const WorldPosition& world() const { return world_; }
  std::int64_t accumulation_steps() const { return accumulation_; }
  const at::Device& device() const { return device_; }
  Parallelism& parallelism() { return *parallel_; }
  // The dataset's tokenizer, as its spec and content hash (both empty when it could not be
  // loaded): checkpoints record it, so `albion generate` decodes with the tokenizer trained on.
  const std::string& tokenizer_spec() const { return tokenizer_spec_; }
  const std::string& tokenizer_hash() const { return tokenizer_hash_; }
  // The chat template a chat dataset was rendered with (llama3, llama3.1, chatml, qwen2.5, none), or empty: recorded
  // too, so `albion generate` can prompt the model as it was trained.
  const std::string& chat_template() const { return chat_template_; }
  // Under LoRA (lora.rank > 0), the frozen base: model.init's absolute path and the SHA-256 of its
  // weight files; empty otherwise.
  const LoraBase& lora_base() const { return lora_base_; }

  // Validation loss over the val split's first eval.batches micro-batches, shared by the
  // data-parallel ranks and weighted by scored token (collective: every rank calls it).
  std::optional<double> evaluate();
  // eval.choices' questions answered, shared by the data-parallel ranks (collective); nullopt
  // without eval.choices.
  std::optional<ChoiceTally> answer_choices();
  // A text sample from eval.sample_prompt, ended by the end-of-text token, or cut short when a stop
  // is requested. A model fine-tuned on chat data is prompted as it is trained: eval.sample_prompt
  // as a user turn in the dataset's template; the sample then shows the conversation, template
  // tokens and all, up to the assistant's end-of-turn token.
  std::string sample(const std::atomic<bool>& stop_requested);
  // Waits for the queued steps and reads their losses and gradient norms, oldest first: each loss
  // must be finite (else an error naming the step), then it is recorded and logged. Checkpoints
  // call it before taking their snapshot (Note [Steps read one late]).
  void read_queued_steps() { read_queued_steps_through(recipe_.train.steps); }

 private:
  // A step whose work is queued on the device and whose numbers are not read yet.
  struct QueuedStep {
    std::int64_t step;
    double lr;
    // The global batch's mean loss, the global gradient norm before clipping, its inputs that are
    // text (not padding).
    HostCopy numbers;
    std::chrono::steady_clock::time_point queued_at;  // when train_step returned
  };
  QueuedStep train_step(std::int64_t step);
  void read_queued_steps_through(std::int64_t step);
  // `base_sha256`: model.init's digest (models::hugging_face_weights_digest), recorded in checkpoints.
  void add_lora_adapters(std::string base_sha256);
  // `done`: when the step's work ended, for the rate since the last logged step.
  void log_step(std::int64_t step, double loss, double lr, double grad_norm,
                std::chrono::steady_clock::time_point done);
  // Of the time in [from, to], how much was spent outside training (untimed_); forgets what ended by `to`.
  std::chrono::steady_clock::duration untimed_within(std::chrono::steady_clock::time_point from,
                                                     std::chrono::steady_clock::time_point to);

  config::Recipe recipe_;
  WorldPosition world_;
  Parallelism one_process_;
  Parallelism* parallel_;
  TrainingHooks default_hooks_;
  TrainingHooks* hooks_;
  at::Device device_ = at::kCPU;
  std::unique_ptr<tokenizers::Tokenizer> tokenizer_;
  std::string tokenizer_spec_;
  std::string tokenizer_hash_;
  std::string chat_template_;
  std::optional<tokenizers::ChatTemplate> sample_chat_template_;  // from chat_template_, when usable
  std::vector<data::ChoiceQuestion> choice_questions_;             // eval.choices', read at start
  LoraBase lora_base_;
  std::unique_ptr<data::TokenLoader> train_loader_;
  std::unique_ptr<data::TokenLoader> val_loader_;
  std::shared_ptr<models::CausalLm> model_;
  std::unique_ptr<optim::AdamW> optimizer_;
  optim::LrSchedule schedule_;
  std::unique_ptr<metrics::MetricsWriter> metrics_;
  std::unique_ptr<StepProfiler> profiler_;  // profile.steps: a window of steps, traced
  std::int64_t accumulation_ = 1;
  double flops_per_token_ = 0;
  std::optional<double> peak_flops_;
  bool bf16_autocast_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_log_;
  std::chrono::steady_clock::time_point last_done_;  // when the last step read had ended
  // Evaluation, samples and checkpoints after a step, not yet taken out of a logged rate.
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::chrono::steady_clock::time_point>> untimed_;
  std::int64_t tokens_since_log_ = 0;  // inputs that are text, not padding
  std::int64_t steps_since_log_ = 0;
  std::deque<QueuedStep> queued_;  // oldest first
  TrainSummary summary_;           // of the train() call in progress
};

}  // namespace albion::train
