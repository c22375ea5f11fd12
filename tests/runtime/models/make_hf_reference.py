"""Writes hf_reference.pt: tiny GPT-2, Llama and Qwen2 models built by Hugging Face transformers (random
weights, fp64) with their logits on fixed token ids, so hf_reference_test.cpp can check that
Albion's models, loading the state dicts by name alone, compute the same function.

    PYTHONPATH=<dir with transformers> .venv/bin/python tests/runtime/models/make_hf_reference.py OUT.pt

Configs must match hf_reference_test.cpp.
"""
import math
import sys

import torch
import transformers

VOCAB, CONTEXT, HIDDEN, LAYERS = 61, 16, 32, 2
LLAMA_CONTEXT = 128  # above the rope scaling's original_max_position_embeddings


def gpt2():
    config = transformers.GPT2Config(vocab_size=VOCAB, n_positions=CONTEXT, n_embd=HIDDEN,
                                     n_layer=LAYERS, n_head=4, layer_norm_epsilon=1e-5,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                     bos_token_id=None, eos_token_id=None)
    return transformers.GPT2LMHeadModel(config)


def llama(tie):
    rope = {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64, "rope_theta": 10000.0}
    kwargs = dict(vocab_size=VOCAB, max_position_embeddings=LLAMA_CONTEXT, hidden_size=HIDDEN,
                  num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=48, rms_norm_eps=1e-5, tie_word_embeddings=tie,
                  attention_bias=False, mlp_bias=False, bos_token_id=None,
                  eos_token_id=None)
    try:  # transformers >= 5
        config = transformers.LlamaConfig(rope_parameters=rope, **kwargs)
    except TypeError:
        config = transformers.LlamaConfig(rope_theta=10000.0, rope_scaling=rope, **kwargs)
    # SDPA, not eager: eager attention takes its softmax in fp32 whatever the model's dtype.
    config._attn_implementation = "sdpa"
    return transformers.LlamaForCausalLM(config)


def qwen2():
    """Qwen2's layout: Llama's with biases on q, k and v; RoPE without scaling."""
    config = transformers.Qwen2Config(vocab_size=VOCAB, max_position_embeddings=LLAMA_CONTEXT, hidden_size=HIDDEN,
                                      num_hidden_layers=LAYERS, num_attention_heads=4, num_key_value_heads=2,
                                      intermediate_size=48, rms_norm_eps=1e-6, tie_word_embeddings=False,
                                      use_sliding_window=False, bos_token_id=None, eos_token_id=None,
                                      rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    config._attn_implementation = "sdpa"
    return transformers.Qwen2ForCausalLM(config)


def use_fp64_rope_angles(model):
    """transformers computes RoPE angles in fp32 (its inv_freq buffer and the position product), which
    limits fp64 logits to ~1e-7. Keep its fp32 frequencies for the frequency check, then run its
    rotary module with fp64 angles from an fp64 evaluation of the same formula (llama3 scaling where
    the config has it), checked here
    against transformers' own values, so the logits can be compared to 1e-10."""
    rotary = model.model.rotary_emb
    hf_inv_freq = rotary.inv_freq.detach().double().clone()
    p = model.config.rope_parameters if hasattr(model.config, "rope_parameters") else model.config.rope_scaling
    dim = model.config.hidden_size // model.config.num_attention_heads
    freq = 1.0 / (p["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    if p.get("rope_type", "default") == "default":
        return use_fp64_angles(rotary, freq, hf_inv_freq)
    wavelen = 2 * math.pi / freq
    original = p["original_max_position_embeddings"]
    low, high, factor = p["low_freq_factor"], p["high_freq_factor"], p["factor"]
    smooth = (original / wavelen - low) / (high - low)
    scaled = torch.where(wavelen > original / low, freq / factor, freq)
    blended = (1 - smooth) * freq / factor + smooth * freq
    scaled = torch.where((wavelen >= original / high) & (wavelen <= original / low), blended, scaled)
    return use_fp64_angles(rotary, scaled, hf_inv_freq)


def use_fp64_angles(rotary, inv_freq, hf_inv_freq):
    assert torch.allclose(inv_freq, hf_inv_freq, rtol=1e-6, atol=0), (inv_freq, hf_inv_freq)
    rotary.inv_freq = inv_freq

    def forward(x, position_ids):
        angles = position_ids[..., None].double() * rotary.inv_freq
        both = torch.cat((angles, angles), dim=-1)
        return ((both.cos() * rotary.attention_scaling).to(x.dtype),
                (both.sin() * rotary.attention_scaling).to(x.dtype))

    rotary.forward = forward
    return hf_inv_freq


def use_fp64_norms(model):
    """LlamaRMSNorm downcasts its input to fp32 for the statistics (right for bf16, lossy for fp64);
    run the same formula without the downcast."""
    for module in model.modules():
        if type(module).__name__ in ("LlamaRMSNorm", "Qwen2RMSNorm"):
            def forward(x, norm=module):
                variance = x.pow(2).mean(-1, keepdim=True)
                return norm.weight * (x * torch.rsqrt(variance + norm.variance_epsilon))
            module.forward = forward


def main():
    torch.manual_seed(0)
    ids = torch.randint(VOCAB, (2, CONTEXT))
    out = {"input_ids": ids}
    for name, model in [("gpt2", gpt2()), ("llama", llama(False)), ("llama_tied", llama(True)), ("qwen2", qwen2())]:
        model = model.double().eval()
        with torch.no_grad():
            # Non-trivial norms and biases, as a trained checkpoint has.
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
            if name.startswith(("llama", "qwen2")):
                out[f"{name}:hf_inv_freq"] = use_fp64_rope_angles(model)
                use_fp64_norms(model)
            logits = model(ids).logits
        for key, tensor in model.state_dict().items():
            out[f"{name}/{key}"] = tensor.contiguous()
        out[f"{name}:logits"] = logits
    torch.save(out, sys.argv[1])
    print("wrote", sys.argv[1], "transformers", transformers.__version__)


if __name__ == "__main__":
    main()
