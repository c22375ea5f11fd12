// File: runtime/models/layers.h
// The leaf modules both architectures are built from. Each registers its tensors under the names
// Hugging Face transformers uses ("weight", "bias"), so a parent's named_parameters() spell the
// published state-dict keys, and each initialises itself when constructed (normal(0, init_std)
// matrices, zero biases, unit norm weights), drawing from the default generator of the device the
// options name: construction order fixes the random stream, so a seed fixes the model.
#pragma once

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "kernels/common/kernel_device.h"

namespace albion::models {

enum class Bias { kNone, kWith };

// While one lives on this thread, layers allocate their matrices without drawing values (for a
// model whose every parameter is loaded next: make_model's InitialValues::kNone). Norm weights and
// biases are still set: they cost nothing and draw nothing.
class SkipRandomInitialValues {
 public:
  SkipRandomInitialValues();
  ~SkipRandomInitialValues();
  SkipRandomInitialValues(const SkipRandomInitialValues&) = delete;
  SkipRandomInitialValues& operator=(const SkipRandomInitialValues&) = delete;

 private:
  bool previous_;
};

// One factor of a LoRA adapter: a bias-free matrix in nn.Linear layout, registered as "lora_A" or
// "lora_B" so its parameter is "<layer>.lora_A.weight", the name PEFT saves adapters under.
class LoraFactor : public torch::nn::Module {
 public:
  explicit LoraFactor(at::Tensor weight) : weight_(register_parameter("weight", std::move(weight))) {}
  const at::Tensor& weight() const { return weight_; }

 private:
  at::Tensor weight_;
};

// What Linear and Conv1d share: an optional low-rank adapter (LoRA, Hu et al. 2021; added by
// runtime/models/lora.h), which adds (alpha / rank) * (x A^T) B^T to the layer's output, with
// A [rank, in] and B [out, rank] in nn.Linear layout whatever the layer's own layout, as PEFT.
class AdaptableLinear : public torch::nn::Module {
 public:
  // A is drawn Kaiming-uniform as PEFT draws it, U(-1/sqrt(in), 1/sqrt(in)), from the default
  // generator of the weight's device; B is zero, so the adapted layer starts as the layer itself.
  // `dropout`: in training mode, the adapter's input is dropped with this probability (PEFT's
  // lora_dropout; the layer's own product sees all of it).
  void add_lora(std::int64_t rank, double alpha, double dropout = 0);
  bool has_lora() const { return lora_a_ != nullptr; }
  // The weight in the layer's own layout with the adapter's (alpha / rank) B A added (transposed
  // for Conv1d): what an exported model holds. The weight itself without an adapter.
  virtual at::Tensor merged_weight() const = 0;

  // For a caller that multiplies the input by the layer's matrices itself (sequence parallelism's
  // gathered products, runtime/models/sequence_parallel.h): the adapter's A [rank, in], undefined
  // without an adapter; whether A sees the layer's own input (not when its dropout is on); and the
  // layer's output from its own product `y` and the adapter's `xa` = x A^T (undefined: none).
  at::Tensor lora_a() const;
  bool adapter_sees_layer_input() const { return !has_lora() || lora_dropout_ == 0 || !is_training(); }
  at::Tensor with_lora_product(at::Tensor y, const at::Tensor& xa) const;
  // model.fused_kernels (make_model sets it on every layer): Note [Weight gradients accumulated in
  // place], kernels/linear/accumulating_linear.h.
  void use_fused_kernels(bool fused) { fused_kernels_ = fused; }
  // Note [A frozen base held in bf16]: stores a frozen fp32 weight (LoRA's base) in `dtype` from
  // now on (the same parameter) and returns the bytes that frees; a trainable weight, or one not in
  // fp32, stays as it is (0 bytes). The adapter, if any, keeps its own dtype.
  std::int64_t hold_frozen_weight_in(at::ScalarType dtype);

  // y = x W^T + b (nn.Linear's terms whatever the stored layout), with the adapter's term.
  virtual at::Tensor forward(const at::Tensor& x) const = 0;
  // The same without b, for a caller that adds it later (a kernel fusing it into what follows, or
  // the sum of a cut layer's partial outputs).
  virtual at::Tensor forward_without_bias(const at::Tensor& x) const = 0;
  // W in nn.Linear layout [out, in] (a view of the stored weight), and b (undefined if none).
  virtual at::Tensor linear_weight() const = 0;
  virtual const at::Tensor& bias() const = 0;

  // Tensor parallelism (runtime/models/tensor_parallel.h): keeps part `index` of `count` equal parts
  // of the weight, in place (the same parameter tensors, now smaller). `features` 0: of the output
  // features, with the bias; `groups` > 1 cuts that many equal blocks of them alike (GPT-2's q, k
  // and v). `features` 1: of the input features; the bias stays whole, for the caller to add once
  // to the sum of the ranks' partial outputs (forward() then refuses; forward_without_bias()
  // serves). Before an adapter is added; one added after is cut with the layer: B by rows when the
  // outputs are cut, A by columns when the inputs are.
  void keep_part(int features, std::int64_t index, std::int64_t count, std::int64_t groups = 1);

 protected:
  // Whether the product for `x` adds the weight's gradient into its .grad itself (fused kernels on
  // the kernels' device, bf16 autocast, autograd on, a trainable weight).
  bool accumulates_in_place(const at::Tensor& x) const;
  // The weight as the product with `x` reads it: weight_as_read(stored_weight(), x).
  at::Tensor weight_for(const at::Tensor& x) const;
  // `y` plus the adapter's term for input `x`, or `y` without an adapter.
  at::Tensor with_lora(at::Tensor y, const at::Tensor& x) const;
  // `x` after the adapter's dropout (training mode).
  at::Tensor dropped(const at::Tensor& x) const;
  // (alpha / rank) B A; only with an adapter.
  at::Tensor lora_delta() const;
  virtual const at::Tensor& stored_weight() const = 0;
  // The stored weight's dimension of output features: 0 in nn.Linear layout, 1 in Conv1D's.
  virtual int output_dim() const = 0;
  std::int64_t in_features() const { return stored_weight().size(1 - output_dim()); }
  std::int64_t out_features() const { return stored_weight().size(output_dim()); }
  // Refuses forward() on a layer cut by its inputs that has a bias (keep_part).
  void check_bias_added_once() const;

  // Tensor parallelism: the weight is part `cut_index_` of `cut_count_` of its output (`cut_dim_` 0)
  // or input (1) features (-1: whole).
  // An adapter added later is cut to match, its A drawn whole first (the whole model's values).
  int cut_dim_ = -1;
  std::int64_t cut_index_ = 0;
  std::int64_t cut_count_ = 1;

 private:
  std::shared_ptr<LoraFactor> lora_a_;
  std::shared_ptr<LoraFactor> lora_b_;
  double lora_scale_ = 0;
  double lora_dropout_ = 0;
  bool fused_kernels_ = false;
};

// nn.Linear layout: weight [out, in]; y = x W^T (+ b).
class Linear : public AdaptableLinear {
 public:
  Linear(std::int64_t in, std::int64_t out, Bias bias, double init_std,
         const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x) const override;
  // forward(x) with the adapter reading `adapter_input`, a tensor equal to x (a norm's operand of
  // its own: Note [One operand per product], kernels/rmsnorm/rmsnorm_torch.cpp).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& adapter_input) const;
  at::Tensor forward_without_bias(const at::Tensor& x) const override;
  const at::Tensor& weight() const { return weight_; }
  at::Tensor linear_weight() const override { return weight_; }
  const at::Tensor& bias() const override { return bias_; }  // undefined for Bias::kNone
  at::Tensor merged_weight() const override;

 protected:
  const at::Tensor& stored_weight() const override { return weight_; }
  int output_dim() const override { return 0; }

 private:
  // x W^T (+ `bias` where defined), without the adapter.
  at::Tensor product(const at::Tensor& x, const at::Tensor& bias) const;

  at::Tensor weight_;
  at::Tensor bias_;  // undefined for Bias::kNone
};

// GPT-2's "Conv1D" (really a linear layer stored transposed): weight [in, out]; y = x W + b.
// Kept in that layout so the published GPT-2 weights load without transposing.
class Conv1d : public AdaptableLinear {
 public:
  Conv1d(std::int64_t in, std::int64_t out, double init_std, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x) const override;
  at::Tensor forward_without_bias(const at::Tensor& x) const override;
  at::Tensor linear_weight() const override { return weight_.t(); }
  const at::Tensor& bias() const override { return bias_; }
  at::Tensor merged_weight() const override;

 protected:
  const at::Tensor& stored_weight() const override { return weight_; }
  int output_dim() const override { return 1; }

 private:
  // x W (+ `bias` where defined), without the adapter.
  at::Tensor product(const at::Tensor& x, const at::Tensor& bias) const;

  at::Tensor weight_;
  at::Tensor bias_;
};

// Note [A frozen base held in bf16]
// Under bf16 autocast every product casts its fp32 weight to bf16 as it reads it, and autocast
// keeps the cast for the step only for trainable weights (Note [Weights cast once per step]): a
// LoRA run cast its whole frozen base again every micro-batch, and held it in fp32 too. The
// trainer stores such a base in bf16 once instead (models::hold_frozen_weights_in_bf16): the
// products read the same bf16 values, the base takes half the memory, and no cast runs; `albion
// eval` and `generate` hold every linear weight so (Note [Inference in the training's precision],
// bf16_inference.h). Run outside autocast, such a model widens the weight to its input's dtype as a
// product reads it: weight_as_read. (Not kernels' product_operand, which casts to autocast's dtype.)
inline at::Tensor weight_as_read(const at::Tensor& weight, const at::Tensor& x) {
  if (weight.scalar_type() == x.scalar_type() || at::autocast::is_autocast_enabled(x.device().type())) return weight;
  return weight.to(x.scalar_type());
}

// The dtype autocast would give `t` in a product (its own without autocast): it casts floating
// point tensors other than fp64 to its lower precision.
inline at::ScalarType product_dtype(const at::Tensor& t) {
  const at::DeviceType device = t.device().type();
  const bool cast = t.is_floating_point() && t.scalar_type() != at::kDouble;
  return cast && at::autocast::is_autocast_enabled(device) ? at::autocast::get_autocast_dtype(device) : t.scalar_type();
}

// Note [Fused kernels on CUDA only]
// With model.fused_kernels the models call kernels/ for CUDA tensors. On CPU they keep torch's own
// ops: those are vectorised (SLEEF), while the kernels' CPU references are plain loops written to
// be obviously right, not fast; the references are exercised by their tests instead. The kernels
// take fp32 and bf16; a model in another dtype (fp16, fp64) keeps torch's ops on CUDA too.
// (kernels::runs_kernels is is_cuda, except in the emulated test build: kernels/common/kernel_device.h.)
inline bool use_fused_kernel(bool fused, const at::Tensor& x) {
  return fused && kernels::runs_kernels(x) && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16);
}

class Embedding : public torch::nn::Module {
 public:
  Embedding(std::int64_t count, std::int64_t dim, double init_std,
            const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& ids) const;
  const at::Tensor& weight() const { return weight_; }
  // Tensor parallelism (runtime/models/tensor_parallel.h): keeps part `index` of `count` equal row
  // ranges of the table, in place; forward() then looks up the ids in that range and gives zeros
  // for the others, for the caller to sum over the ranks.
  void keep_part(std::int64_t index, std::int64_t count);
  // The first id this rank's rows hold: 0 unless cut.
  std::int64_t first_id() const { return first_id_; }

 private:
  at::Tensor weight_;
  std::int64_t first_id_ = 0;
  bool cut_ = false;
};

class LayerNorm : public torch::nn::Module {
 public:
  // `fused`: kernels/layernorm for CUDA inputs of the weight's dtype (Note [Fused kernels on CUDA only]).
  LayerNorm(std::int64_t dim, double eps, const at::TensorOptions& options, bool fused = false);
  at::Tensor forward(const at::Tensor& x) const;
  // For an output that one matrix product reads and nothing else: with the fused kernel under bf16
  // autocast, written in bf16 as the product's cast would round it (Note [A norm writes its
  // product's operand], kernels/layernorm/layernorm_torch.cpp); else forward(x).
  at::Tensor forward_into_product(const at::Tensor& x) const;
  // {x + residual, the norm of that sum} (forward_into_product's where `into_product`): in one fused
  // kernel where the norm's would run and takes the residual's dtype (Note [The residual add in
  // the norm], kernels/layernorm/layernorm_torch.cpp); else the add, then the norm.
  std::pair<at::Tensor, at::Tensor> add_then_forward(const at::Tensor& x, const at::Tensor& residual,
                                                     bool into_product) const;

 private:
  // The output dtype of the fused kernel for x, or none where torch's ops run.
  std::optional<at::ScalarType> fused_output_dtype(const at::Tensor& x, bool into_product) const;

  double eps_;
  bool fused_;
  at::Tensor weight_;
  at::Tensor bias_;
};

// Root-mean-square norm with its statistics in at least fp32 (bf16 activations are upcast, fp64
// ones kept), then cast back before the weight is applied, as Llama's reference does. `fused`:
// the kernels/rmsnorm kernels for CUDA inputs sharing the weight's dtype (they round once, at the
// end). Note [Fused kernels on CUDA only].
class RmsNorm : public torch::nn::Module {
 public:
  RmsNorm(std::int64_t dim, double eps, const at::TensorOptions& options, bool fused = false);
  at::Tensor forward(const at::Tensor& x) const;
  // {x + residual, the norm of that sum}: in one fused kernel where the norm's would run and takes
  // the residual's dtype (Note [The residual add in the norm], kernels/layernorm/layernorm_torch.cpp);
  // else the add, then the norm.
  std::pair<at::Tensor, at::Tensor> add_then_forward(const at::Tensor& x, const at::Tensor& residual) const;
  // {x + residual (x where `residual` is undefined), its norm as max(products, 1) tensors}, for
  // `products` matrix products that read the norm and nothing else does (0: other readers too).
  // With the fused kernel under bf16 autocast, fp32 x and as many products as it writes operands
  // for (kernels::rmsnorm_operands_take): one bf16 operand for each,
  // the fp32 norm rounded as its cast would round it (Note [One operand per product],
  // kernels/rmsnorm/rmsnorm_torch.cpp); else the one norm, repeated.
  std::pair<at::Tensor, std::vector<at::Tensor>> forward_into_products(const at::Tensor& x, const at::Tensor& residual,
                                                                      std::int64_t products) const;

 private:
  // Whether the fused kernel normalises x.
  bool runs_fused(const at::Tensor& x) const;

  double eps_;
  bool fused_;
  at::Tensor weight_;
};

}  // namespace albion::models
