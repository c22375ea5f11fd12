// File: tests/runtime/models/models_cuda_test.cpp
// The GPU path computes the CPU path's function (suite ModelsCuda, label gpu, skipped without a
// device): fp32 forward on CUDA equals CPU; under bf16 autocast the logits stay close to fp32, the
// loss is fp32 and backward gives finite gradients to the fp32 master weights; SDPA's grouped-
// query path (enable_gqa) agrees with the CPU; the fused kernels give the same loss and gradients
// as torch's ops in fp32, and are as accurate under bf16 autocast, give the plain step's gradients
// when activations are recomputed, keep the KV cache exact, and train on packed documents (RoPE
// rotating each token by its own row); under autocast the fused LayerNorm
// writes a lone product's operand in bf16, and the fused RMSNorm one operand per product; the
// sampler runs on the device. A model with masked vocabulary padding gives the unpadded model's
// loss and gradients on the fused path.
// The fused-kernel comparisons also run on the CPU emulator of the kernels
// (models_on_emulator_test; tests/kernels/kernel_device.h).
#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <torch/types.h>

#include "kernels/common/autocast_scope.h"
#include "runtime/models/kv_cache.h"
#include "runtime/models/layers.h"
#include "runtime/models/lora.h"
#include "runtime/models/sampler.h"
#include "tests/kernels/kernel_device.h"
#include "tests/runtime/models/model_test_support.h"
#include "tests/support/cuda_available.h"
#include "tests/support/full_fp32_matmuls.h"

namespace albion::models {
namespace {

// Head dimension 64 (a flash-attention size), GQA with groups of 4.
ModelConfig cuda_llama() {
  ModelConfig c = testing::small_llama(false);
  c.hidden_size = 256;
  c.heads = 4;
  c.kv_heads = 1;
  c.intermediate_size = 512;
  c.context_length = 128;
  return c;
}

ModelConfig cuda_gpt2() {
  ModelConfig c = testing::small_gpt2();
  c.hidden_size = 256;
  c.heads = 4;
  c.kv_heads = 4;
  c.intermediate_size = 1024;
  c.context_length = 128;
  return c;
}


TEST(ModelsCuda, Fp32MatchesCpuAndBf16AutocastTrains) {
  ALBION_SKIP_WITHOUT_CUDA();
  const testing_support::FullFp32Matmuls full_fp32;
  for (const ModelConfig& config : {cuda_gpt2(), cuda_llama()}) {
    const char* arch = architecture_name(config.architecture);
    at::manual_seed(21);
    auto model = make_model(config);
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, p] : model->named_parameters()) p.add_(at::randn_like(p) * 0.05);
    }
    const at::Tensor ids = at::randint(config.vocab_size, {2, 128}, at::kLong);
    const at::Tensor cpu_logits = model->forward(ids).detach();
    model->to(at::Device(at::kCUDA));
    const at::Tensor cuda_ids = ids.to(at::kCUDA);
    const at::Tensor fp32_logits = model->forward(cuda_ids).detach().cpu();
    EXPECT_LT(testing::relative_error(fp32_logits, cpu_logits), 1e-4) << arch;

    const kernels::Bf16AutocastScope autocast(at::kCUDA);
    const at::Tensor bf16_logits = model->forward(cuda_ids);
    EXPECT_EQ(bf16_logits.scalar_type(), at::kBFloat16) << arch;
    EXPECT_LT(testing::relative_error(bf16_logits.detach().cpu().to(at::kFloat), cpu_logits), 5e-2)
        << arch;
    const at::Tensor loss = model->loss(cuda_ids, cuda_ids.roll(-1, 1), at::ones_like(cuda_ids));
    EXPECT_EQ(loss.scalar_type(), at::kFloat) << arch;
    loss.backward();
    for (const auto& [name, p] : model->named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << arch << " " << name;
      EXPECT_EQ(p.grad().scalar_type(), at::kFloat) << name;
      EXPECT_TRUE(p.grad().isfinite().all().item<bool>()) << arch << " " << name;
    }
  }
}

// One training step's loss and gradients (on the host) of a fresh model on the kernel device.
struct StepResult {
  at::Tensor loss;
  std::vector<at::Tensor> grads;
};

// `lora`: with rank-4 adapters on every linear layer, B drawn non-zero (a trained adapter); the
// gradients are then the adapters' alone. `recompute_every`: activation checkpointing. `positions`:
// packed documents (Note [Attention within documents]).
StepResult loss_and_gradients(ModelConfig config, const at::Tensor& ids, bool fused, bool autocast,
                              bool lora = false, std::int64_t recompute_every = 0, const at::Tensor& positions = {}) {
  config.fused_kernels = fused;
  config.recompute_every = recompute_every;
  at::manual_seed(21);
  auto model = make_model(config);
  if (lora) {
    add_lora_adapters(*model, {4, 8, {"all-linear"}});
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : model->trainable_parameters()) {
      if (name.ends_with("lora_B.weight")) p.normal_(0.0, 0.05);
    }
  }
  model->to(kernels::kernel_device());
  if (lora && autocast) hold_frozen_weights_in_bf16(*model);  // as the trainer does (Note [A frozen base held in bf16])
  const kernels::OnKernelDevice on_device;  // with fused_kernels off, torch's ops run anyway
  const kernels::Bf16AutocastScope bf16(kernels::kernel_device().type(), autocast);
  const at::Tensor loss = model->loss(ids, ids.roll(-1, 1), at::ones_like(ids), positions);
  loss.backward();
  StepResult out{loss.detach().cpu(), {}};
  for (const auto& [name, p] : model->trainable_parameters()) out.grads.push_back(p.grad().cpu());
  return out;
}

// Launches of a kernel that has variants (the norms' rows held in registers, or looped over, and
// their backward passes that sum the parameter gradients; the cross-entropy's rows held in a
// cluster's registers), as the emulator counts them: "rmsnorm_backward" counts
// rmsnorm_backward_kernel, rmsnorm_backward_registers_kernel and rmsnorm_backward_summing_kernel;
// nothing off the emulator.
std::optional<std::int64_t> launches_of(const std::string& kernel) {
  std::optional<std::int64_t> total;
  for (const char* variant : {"_kernel", "_registers_kernel", "_summing_kernel", "_cluster_kernel"}) {
    if (const auto count = kernels::kernel_launches(kernel + variant)) total = total.value_or(0) + *count;
  }
  return total;
}

// The fused step, checking that every fused kernel of the architecture ran: a layer that silently
// fell back to torch's ops would pass any tolerance. The emulator counts launches; a GPU run
// cannot, and there only requires the gradients to differ from torch's somewhere.
StepResult fused_loss_and_gradients(const ModelConfig& config, const at::Tensor& ids, bool autocast,
                                    const StepResult& torch_ops, bool lora = false, const at::Tensor& positions = {}) {
  const std::vector<std::string> fused_kernels =
      config.architecture == Architecture::kGpt2
          ? std::vector<std::string>{"layernorm_forward", "layernorm_backward", "add_segments", "gelu_bias_forward",
                                     "gelu_bias_backward", "softmax_cross_entropy"}
          : std::vector<std::string>{"rmsnorm_forward", "rmsnorm_backward", "add_segments", "rope", "swiglu_forward",
                                     "swiglu_backward", "softmax_cross_entropy"};
  std::vector<std::string> expected = fused_kernels;
  // add_segments: the last step of every norm's parameter gradients, summed in the backward pass or
  // apart. Frozen norm weights (LoRA) need no weight gradient, and the norms' backward skips it.
  if (lora) std::erase(expected, "add_segments");
  std::vector<std::optional<std::int64_t>> before;
  for (const std::string& kernel : expected) before.push_back(launches_of(kernel));
  StepResult fused = loss_and_gradients(config, ids, /*fused=*/true, autocast, lora, 0, positions);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    if (before[i]) {
      EXPECT_GT(*launches_of(expected[i]), *before[i]) << expected[i] << " did not run";
    }
  }
  bool differs = false;
  for (std::size_t i = 0; i < fused.grads.size(); ++i) {
    differs = differs || !at::equal(fused.grads[i], torch_ops.grads[i]);
  }
  EXPECT_TRUE(differs) << "the fused kernels did not run";
  return fused;
}

// Two sequences of 128 token ids, on the kernel device.
at::Tensor random_ids_on_kernel_device(const ModelConfig& config) {
  return kernels::to_kernel_device(at::randint(config.vocab_size, {2, 128}, at::kLong));
}

// In fp32, for both architectures: the fused step's loss within 1e-5 and its gradients (every
// parameter's, or with `lora` the adapters' alone) within 1e-4 of torch's ops.
void expect_fused_step_matches_torch_ops(bool lora) {
  const testing_support::FullFp32Matmuls full_fp32;
  for (const ModelConfig& config : {cuda_gpt2(), cuda_llama()}) {
    const char* arch = architecture_name(config.architecture);
    const at::Tensor ids = random_ids_on_kernel_device(config);
    const StepResult torch_ops = loss_and_gradients(config, ids, /*fused=*/false, /*autocast=*/false, lora);
    const StepResult fused = fused_loss_and_gradients(config, ids, /*autocast=*/false, torch_ops, lora);
    if (lora) {
      ASSERT_EQ(torch_ops.grads.size(), 2u * (config.architecture == Architecture::kGpt2 ? 4 : 7) * config.layers);
    }
    EXPECT_LT(testing::relative_error(fused.loss, torch_ops.loss), 1e-5) << arch;
    for (std::size_t i = 0; i < torch_ops.grads.size(); ++i) {
      EXPECT_LT(testing::relative_error(fused.grads[i], torch_ops.grads[i]), 1e-4) << arch << " gradient " << i;
    }
  }
}

// model.fused_kernels: the same loss and gradients with Albion's kernels as with torch's ops.
TEST(ModelsCuda, FusedKernelsGiveTheSameLossAndGradients) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  expect_fused_step_matches_torch_ops(/*lora=*/false);
}

// LoRA over the fused kernels: adapters on every linear layer, including GPT-2's c_fc, whose bias
// the fused GELU adds (the adapter's term must come before it), and Llama's projections that the
// fused RoPE rotates in place. The loss and the adapters' gradients match torch's ops.
TEST(ModelsCuda, FusedKernelsTrainLoraAdapters) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  expect_fused_step_matches_torch_ops(/*lora=*/true);
}

// Packed documents (data.document_masking): Llama's fused RoPE rotates each token by its own row of
// per-token tables, and both architectures' loss and gradients match torch's ops in fp32.
TEST(ModelsCuda, FusedKernelsTrainOnPackedDocuments) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const testing_support::FullFp32Matmuls full_fp32;
  // Row 0: documents of 50, 3 and 75 tokens; row 1: one of 128 (0 .. 127, as without positions).
  std::vector<std::int64_t> positions;
  for (std::int64_t length : {50, 3, 75, 128}) {
    for (std::int64_t i = 0; i < length; ++i) positions.push_back(i);
  }
  const at::Tensor packed = kernels::to_kernel_device(at::tensor(positions, at::kLong).view({2, 128}));
  for (const ModelConfig& config : {cuda_gpt2(), cuda_llama()}) {
    const char* arch = architecture_name(config.architecture);
    const at::Tensor ids = random_ids_on_kernel_device(config);
    const StepResult torch_ops = loss_and_gradients(config, ids, /*fused=*/false, /*autocast=*/false, false, 0, packed);
    const StepResult fused = fused_loss_and_gradients(config, ids, /*autocast=*/false, torch_ops, false, packed);
    const StepResult unpacked = loss_and_gradients(config, ids, /*fused=*/false, /*autocast=*/false);
    EXPECT_GT(testing::relative_error(torch_ops.loss, unpacked.loss), 1e-6) << arch << ": the documents were not cut";
    EXPECT_LT(testing::relative_error(fused.loss, torch_ops.loss), 1e-5) << arch;
    for (std::size_t i = 0; i < torch_ops.grads.size(); ++i) {
      EXPECT_LT(testing::relative_error(fused.grads[i], torch_ops.grads[i]), 1e-4) << arch << " gradient " << i;
    }
  }
}

// Under bf16 autocast, as the trainer runs: the fused path is as accurate as torch's ops, for the
// whole model and for LoRA adapters on every linear layer (whose inputs Llama's norms write as
// operands too). Both are measured against the fp32 run of torch's ops; each rounds its bf16
// activations at its own points, so the fused path may differ from torch's by about as much as
// torch's differs from fp32.
TEST(ModelsCuda, FusedKernelsUnderBf16AutocastAreAsAccurateAsTorchsOps) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const testing_support::FullFp32Matmuls full_fp32;
  for (const auto& [config, lora] : {std::pair{cuda_gpt2(), false}, {cuda_llama(), false}, {cuda_gpt2(), true},
                                     {cuda_llama(), true}}) {
    const std::string arch = std::string(architecture_name(config.architecture)) + (lora ? " LoRA" : "");
    const at::Tensor ids = random_ids_on_kernel_device(config);
    const StepResult exact = loss_and_gradients(config, ids, /*fused=*/false, /*autocast=*/false, lora);
    const StepResult torch_ops = loss_and_gradients(config, ids, /*fused=*/false, /*autocast=*/true, lora);
    const StepResult fused = fused_loss_and_gradients(config, ids, /*autocast=*/true, torch_ops, lora);
    // Twice torch's own error, and a floor for the losses (both within ~3e-5 of fp32): measured on
    // the emulator, the fused path's gradients came within 1.25x of torch's error, and a broken
    // kernel (a dropped bias, a wrong derivative) lands 10x to 1000x above.
    const auto limit = [](double torch_error) { return 2 * torch_error + 1e-4; };
    EXPECT_LT(testing::relative_error(fused.loss, exact.loss),
              limit(testing::relative_error(torch_ops.loss, exact.loss)))
        << arch;
    for (std::size_t i = 0; i < exact.grads.size(); ++i) {
      EXPECT_LT(testing::relative_error(fused.grads[i], exact.grads[i]),
                limit(testing::relative_error(torch_ops.grads[i], exact.grads[i])))
          << arch << " parameter " << i;
    }
  }
}

// GPT-2's blocks hand their norms' outputs to one product each through forward_into_product: in
// bf16 under bf16 autocast with the fused kernel, the fp32 output rounded (what the product's cast
// makes of it); fp32 otherwise (no autocast, or torch's ops).
TEST(ModelsCuda, FusedKernelsLayerNormWritesALoneProductsOperandInBf16) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const at::TensorOptions options = at::TensorOptions().device(kernels::kernel_device());
  const LayerNorm fused(96, 1e-5, options, /*fused=*/true);
  const LayerNorm plain(96, 1e-5, options, /*fused=*/false);
  at::manual_seed(4);
  const at::Tensor x = kernels::to_kernel_device(at::randn({3, 5, 96}));
  const kernels::OnKernelDevice on_device;
  EXPECT_EQ(fused.forward_into_product(x).scalar_type(), at::kFloat);
  const kernels::Bf16AutocastScope bf16(kernels::kernel_device().type());
  const at::Tensor operand = fused.forward_into_product(x);
  EXPECT_EQ(operand.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(at::equal(operand.cpu(), fused.forward(x).to(at::kBFloat16).cpu()));
  EXPECT_EQ(plain.forward_into_product(x).scalar_type(), at::kFloat);
}

// Ops on fp32 tensors [..., hidden], counted by RecordFunction callbacks while they are registered
// (one counter: tests run one at a time).
std::atomic<std::int64_t> counted_hidden_size{0};
std::atomic<std::int64_t> counted_ops{0};

bool fp32_hidden(const c10::IValue& value) {
  if (!value.isTensor()) return false;
  const at::Tensor& t = value.toTensor();
  return t.scalar_type() == at::kFloat && t.dim() >= 2 && t.size(-1) == counted_hidden_size;
}

// The counted model's parameters, by their data (a frozen model's are leaves, as are activations
// computed from them alone).
std::set<const void*> counted_model_parameters;

// Casts of them to bf16, activations only (no parameter).
std::unique_ptr<at::ObserverContext> count_hidden_cast(const at::RecordFunction& fn) {
  if (std::string_view(fn.name()) != "aten::_to_copy") return nullptr;
  const auto inputs = fn.inputs();
  if (inputs.size() >= 2 && fp32_hidden(inputs[0]) &&
      !counted_model_parameters.contains(inputs[0].toTensor().data_ptr()) && inputs[1].isInt() &&
      inputs[1].toScalarType() == at::kBFloat16) {
    ++counted_ops;
  }
  return nullptr;
}

// Adds to them: the residual stream's (leaves too where the model is frozen, as under LoRA).
std::unique_ptr<at::ObserverContext> count_hidden_add(const at::RecordFunction& fn) {
  if (std::string_view(fn.name()) != "aten::add") return nullptr;
  const auto inputs = fn.inputs();
  if (!inputs.empty() && fp32_hidden(inputs[0])) ++counted_ops;
  return nullptr;
}

// What `count` counts over one forward of `config`'s model (the loss), under bf16 autocast or not;
// `lora`: with rank-4 adapters on every linear layer.
std::int64_t counted_in_forward(const ModelConfig& config, bool autocast,
                                std::unique_ptr<at::ObserverContext> (*count)(const at::RecordFunction&),
                                bool lora = false) {
  const at::Tensor ids = random_ids_on_kernel_device(config);
  auto model = make_model(config);
  if (lora) add_lora_adapters(*model, {4, 8, {"all-linear"}});
  model->to(kernels::kernel_device());
  const kernels::OnKernelDevice on_device;
  const kernels::Bf16AutocastScope bf16(kernels::kernel_device().type(), autocast);
  counted_hidden_size = config.hidden_size;
  counted_ops = 0;
  counted_model_parameters.clear();
  for (const at::Tensor& p : model->parameters()) counted_model_parameters.insert(p.data_ptr());
  const at::CallbackHandle handle = at::addThreadLocalCallback(at::RecordFunctionCallback(count).needsInputs(true));
  model->loss(ids, ids.roll(-1, 1), at::ones_like(ids));
  at::removeCallback(handle);
  return counted_ops;
}

// Under bf16 autocast the fused kernels write the block norms' outputs in bf16 for the products
// that read them, so only the final norm's output is cast (for the LM head): GPT-2's norms one
// operand for their one product (Note [A norm writes its product's operand]), Llama's one for each
// of the query, key and value projections and of the gate and up projections (Note [One operand per
// product], kernels/rmsnorm/rmsnorm_torch.cpp). Torch's ops cast each norm's output once per product:
// GPT-2 2 a block, Llama 5 a layer; with LoRA adapters on every linear layer once more per adapter
// (GPT-2 4, Llama 10). With adapters Llama's norms write an operand for each adapter too, GPT-2's
// write fp32, cast as often as torch's ops cast theirs.
TEST(ModelsCuda, FusedKernelsLeaveTheBlockNormsUncast) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (ModelConfig config : {cuda_gpt2(), cuda_llama()}) {
    SCOPED_TRACE(architecture_name(config.architecture));
    const bool gpt2 = config.architecture == Architecture::kGpt2;
    const std::int64_t casts_per_block = gpt2 ? 2 : 5;
    config.fused_kernels = false;
    EXPECT_EQ(counted_in_forward(config, /*autocast=*/true, count_hidden_cast), casts_per_block * config.layers + 1);
    const std::int64_t with_lora = counted_in_forward(config, /*autocast=*/true, count_hidden_cast, /*lora=*/true);
    EXPECT_EQ(with_lora, 2 * casts_per_block * config.layers + 1) << "LoRA";
    config.fused_kernels = true;
    EXPECT_EQ(counted_in_forward(config, /*autocast=*/true, count_hidden_cast), 1);
    EXPECT_EQ(counted_in_forward(config, /*autocast=*/true, count_hidden_cast, /*lora=*/true), gpt2 ? with_lora : 1)
        << "LoRA";
  }
}

// The norms add the residual stream's pending branch in their kernels (Note [The residual add in
// the norm]): the second norm of a block the attention's output, the next block's first norm (or
// the final norm) the MLP's. Torch's ops add to the stream twice a block, and GPT-2 once more for
// its two embeddings; the fused kernels only that once: in fp32, under bf16 autocast (where the
// stream and norms stay fp32 beside the branches' bf16 outputs) and with LoRA adapters under
// autocast (every GPT-2 norm then writes fp32).
TEST(ModelsCuda, FusedKernelsAddTheResidualBranchesInTheNorms) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (ModelConfig config : {cuda_gpt2(), cuda_llama()}) {
    const int embedding_adds = config.architecture == Architecture::kGpt2 ? 1 : 0;
    for (const auto& [autocast, lora] : {std::pair{false, false}, {true, false}, {true, true}}) {
      SCOPED_TRACE(std::string(architecture_name(config.architecture)) + (autocast ? ", bf16 autocast" : ", fp32") +
                   (lora ? ", LoRA" : ""));
      config.fused_kernels = false;
      EXPECT_EQ(counted_in_forward(config, autocast, count_hidden_add, lora), 2 * config.layers + embedding_adds);
      config.fused_kernels = true;
      EXPECT_EQ(counted_in_forward(config, autocast, count_hidden_add, lora), embedding_adds);
    }
  }
}

// Activation checkpointing over the fused kernels under bf16 autocast, as the trainer runs: the
// recomputation in the backward pass (on the autograd engine's device thread, where autocast must
// be switched on again) gives the gradients of the plain step. Not bit for bit on a GPU, whose
// attention backward accumulates in a varying order; exactly on the emulator.
TEST(ModelsCuda, FusedKernelsRecomputedUnderBf16AutocastGiveThePlainGradients) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  for (const ModelConfig& config : {cuda_gpt2(), cuda_llama()}) {
    const char* arch = architecture_name(config.architecture);
    const at::Tensor ids = random_ids_on_kernel_device(config);
    const StepResult plain = loss_and_gradients(config, ids, /*fused=*/true, /*autocast=*/true);
    const StepResult recomputed =
        loss_and_gradients(config, ids, /*fused=*/true, /*autocast=*/true, /*lora=*/false, /*recompute_every=*/1);
    EXPECT_TRUE(at::equal(plain.loss, recomputed.loss)) << arch;
    for (std::size_t i = 0; i < plain.grads.size(); ++i) {
      EXPECT_LT(testing::relative_error(recomputed.grads[i], plain.grads[i]), 1e-3) << arch << " parameter " << i;
    }
  }
}

// The KV cache with the fused kernels (RoPE at an offset into its tables, norms on one token):
// the cached logits equal the whole sequence's, for a prompt, single tokens and a chunk.
TEST(ModelsCuda, FusedKernelsKeepTheKvCacheExact) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const testing_support::FullFp32Matmuls full_fp32;
  for (ModelConfig config : {cuda_gpt2(), cuda_llama()}) {
    const char* arch = architecture_name(config.architecture);
    config.fused_kernels = true;
    at::manual_seed(23);
    auto model = make_model(config);
    model->to(kernels::kernel_device());
    model->eval();
    const kernels::OnKernelDevice on_device;
    torch::NoGradGuard no_grad;
    const at::Tensor ids = kernels::to_kernel_device(at::randint(config.vocab_size, {1, 64}, at::kLong));
    const std::optional<std::int64_t> rope_before = kernels::kernel_launches("rope_kernel");
    const at::Tensor whole = model->forward(ids).cpu();
    KvCache cache(config.context_length);
    std::vector<at::Tensor> pieces = {model->forward(ids.narrow(1, 0, 48), cache).cpu()};
    for (std::int64_t t = 48; t < 59; ++t) pieces.push_back(model->forward(ids.narrow(1, t, 1), cache).cpu());
    pieces.push_back(model->forward(ids.narrow(1, 59, 5), cache).cpu());
    EXPECT_LT(testing::relative_error(at::cat(pieces, 1), whole), 1e-5) << arch;
    if (rope_before && config.architecture == Architecture::kLlama) {
      EXPECT_GT(*kernels::kernel_launches("rope_kernel"), *rope_before) << "the fused RoPE did not run";
    }
  }
}

// Masked vocabulary padding on the fused path (Note [Masked vocabulary padding]): the chunked
// cross-entropy projects onto the ids in use only, so a padded model's fused step gives the
// published model's loss and gradients as torch's ops compute them, and the padding rows 0.
TEST(ModelsCuda, FusedKernelsLeaveMaskedVocabularyPaddingOut) {
  ALBION_SKIP_WITHOUT_KERNEL_DEVICE();
  const testing_support::FullFp32Matmuls full_fp32;
  constexpr std::int64_t kPadding = 35;  // 97 ids in 132 rows: the kernel pads the 97 to 128 itself
  for (ModelConfig config : {cuda_gpt2(), cuda_llama()}) {
    const char* arch = architecture_name(config.architecture);
    const at::Tensor ids = random_ids_on_kernel_device(config);
    const StepResult torch_ops = loss_and_gradients(config, ids, /*fused=*/false, /*autocast=*/false);
    config.fused_kernels = true;
    at::manual_seed(21);  // loss_and_gradients' model, padded
    const auto padded = testing::with_vocab_padding(*make_model(config), kPadding);
    padded->to(kernels::kernel_device());
    const std::optional<std::int64_t> before = launches_of("softmax_cross_entropy");
    const kernels::OnKernelDevice on_device;
    const at::Tensor loss = padded->loss(ids, ids.roll(-1, 1), at::ones_like(ids));
    loss.backward();
    if (before) {
      EXPECT_GT(*launches_of("softmax_cross_entropy"), *before) << arch;
    }
    EXPECT_LT(testing::relative_error(loss.detach().cpu(), torch_ops.loss), 1e-5) << arch;
    const auto parameters = padded->trainable_parameters();
    ASSERT_EQ(parameters.size(), torch_ops.grads.size());
    for (std::size_t i = 0; i < parameters.size(); ++i) {
      const auto& [name, parameter] = parameters[i];
      const at::Tensor gradient = parameter.grad().cpu();
      const at::Tensor& expected = torch_ops.grads[i];
      EXPECT_LT(testing::relative_error(gradient.narrow(0, 0, expected.size(0)), expected), 1e-4)
          << arch << " " << name;
      if (gradient.size(0) > expected.size(0)) {
        EXPECT_TRUE(gradient.narrow(0, expected.size(0), kPadding).eq(0).all().item<bool>()) << arch << " " << name;
      }
    }
  }
}

TEST(ModelsCuda, SamplerRunsOnDevice) {
  ALBION_SKIP_WITHOUT_CUDA();
  at::manual_seed(22);
  auto model = make_model(cuda_llama());
  model->to(at::Device(at::kCUDA));
  SamplingOptions options;
  options.max_new_tokens = 20;
  options.top_k = 5;
  const std::vector<std::int64_t> a = sample(*model, {1, 2, 3}, options);
  ASSERT_EQ(a.size(), 20u);
  for (std::int64_t id : a) EXPECT_TRUE(id >= 0 && id < model->config().vocab_size);
  EXPECT_EQ(sample(*model, {1, 2, 3}, options), a);
}

}  // namespace
}  // namespace albion::models
