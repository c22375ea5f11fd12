// File: tests/runtime/models/hf_reference_test.cpp
// Albion's GPT-2, Llama and Qwen2 (Llama with attention biases) against Hugging Face transformers
// itself: hf_reference.pt (written by make_hf_reference.py) holds tiny fp64 models' state dicts and
// their logits. Loading a state dict
// by name alone, with no renaming, must cover every parameter and reproduce the logits; the only
// key left over is a tied model's lm_head.weight, a copy of the token embedding. transformers keeps
// RoPE frequencies and angles in fp32; the script records its frequencies (checked here to fp32
// precision) and computes its reference logits with fp64 angles (see make_hf_reference.py).
#include <gtest/gtest.h>

#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/types.h>

#include <fstream>
#include <iterator>
#include <map>
#include <set>

#include "runtime/models/causal_lm.h"
#include "runtime/models/rope.h"

namespace albion::models {
namespace {

std::map<std::string, at::Tensor> load_reference() {
  std::ifstream in(ALBION_SOURCE_DIR "/tests/runtime/models/hf_reference.pt", std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  std::map<std::string, at::Tensor> out;
  if (bytes.empty()) return out;
  for (const auto& entry : torch::jit::pickle_load(bytes).toGenericDict()) {
    out.emplace(entry.key().toStringRef(), entry.value().toTensor());
  }
  return out;
}

ModelConfig tiny(Architecture architecture, bool tie) {
  ModelConfig c;
  c.architecture = architecture;
  c.vocab_size = 61;
  c.context_length = architecture == Architecture::kLlama ? 128 : 16;
  c.hidden_size = 32;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = architecture == Architecture::kLlama ? 2 : 4;
  c.intermediate_size = architecture == Architecture::kLlama ? 48 : 128;
  c.norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  if (architecture == Architecture::kLlama) c.rope_scaling = RopeScaling{4.0, 1.0, 4.0, 64};
  c.tie_embeddings = tie;
  return c;
}

void check_against_transformers(const std::string& prefix, const ModelConfig& config,
                                const char* tied_embedding) {
  const std::map<std::string, at::Tensor> reference = load_reference();
  ASSERT_FALSE(reference.empty()) << "tests/runtime/models/hf_reference.pt is missing";
  auto model = make_model(config);
  model->to(at::kDouble);
  std::set<std::string> unused;
  for (const auto& [key, _] : reference) {
    if (key.starts_with(prefix + "/")) unused.insert(key.substr(prefix.size() + 1));
  }
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, p] : model->named_parameters()) {
      ASSERT_TRUE(unused.count(name)) << prefix << ": transformers has no '" << name << "'";
      const at::Tensor& value = reference.at(prefix + "/" + name);
      ASSERT_EQ(value.sizes(), p.sizes()) << name;
      p.copy_(value);
      unused.erase(name);
    }
  }
  if (tied_embedding != nullptr) {
    EXPECT_EQ(unused, std::set<std::string>{"lm_head.weight"}) << prefix;
    EXPECT_TRUE(at::equal(reference.at(prefix + "/lm_head.weight"),
                          reference.at(prefix + "/" + tied_embedding)));
  } else {
    EXPECT_TRUE(unused.empty()) << prefix << ": " << *unused.begin();
  }
  if (config.architecture == Architecture::kLlama) {
    // transformers' own llama3 frequencies, which it keeps in fp32.
    const at::Tensor hf = reference.at(prefix + ":hf_inv_freq");
    const at::Tensor ours =
        rope_inverse_frequencies(config.head_dim(), config.rope_theta, config.rope_scaling);
    EXPECT_TRUE(at::allclose(ours, hf, 1e-6, 0.0)) << ours << hf;
  }
  const at::Tensor expected = reference.at(prefix + ":logits");
  const at::Tensor logits = model->forward(reference.at("input_ids"));
  const double error =
      (logits - expected).abs().max().item<double>() / expected.abs().max().item<double>();
  EXPECT_LT(error, 1e-10) << prefix;
}

TEST(HfReference, Gpt2) {
  check_against_transformers("gpt2", tiny(Architecture::kGpt2, true), "transformer.wte.weight");
}

TEST(HfReference, LlamaUntied) {
  check_against_transformers("llama", tiny(Architecture::kLlama, false), nullptr);
}

TEST(HfReference, LlamaTied) {
  check_against_transformers("llama_tied", tiny(Architecture::kLlama, true),
                             "model.embed_tokens.weight");
}

// Qwen2ForCausalLM: the Llama layout with q, k and v biases, RoPE base 1e6 without scaling.
TEST(HfReference, Qwen2) {
  ModelConfig c = tiny(Architecture::kLlama, false);
  c.attention_bias = true;
  c.rope_theta = 1000000.0;
  c.rope_scaling.reset();
  c.norm_eps = 1e-6;
  check_against_transformers("qwen2", c, nullptr);
}

}  // namespace
}  // namespace albion::models
