"""Plain PyTorch twin of `albion train recipes/gpt2_124m.ini`, eager or torch.compile'd, for the
training benchmark (bench/train_throughput.sh runs both next to Albion in one run).

Same model as Albion's `gpt2` preset (12 layers, hidden 768, 12 heads, context 1024, vocabulary
50,257, tied embeddings, pre-LayerNorm, GELU-tanh, biases, SDPA causal attention), bf16 autocast
over fp32 parameters on CUDA, AdamW (0.9, 0.95, eps 1e-8, weight decay 0.1 on matrices only, torch's
fused implementation on CUDA: the strongest plain-PyTorch baseline), global-norm clipping at 1.0,
and gradient accumulation. Random tokens: speed does not depend on the text. Prints one JSON line:
tokens/s (median over steps after warm-up), MFU with Albion's formula and peak table, the CUDA
caching allocator's peak, and the SDPA backend torch's dispatcher picks for the attention.

    python bench/gpt2_step_torch.py [--compile] [--steps 20] [--micro-batch 16] [--accum 4]
                                    [--preset gpt2|tiny] [--device cuda|cpu]
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {  # vocab, context, hidden, layers, heads
    "gpt2": (50257, 1024, 768, 12, 12),
    "tiny": (257, 256, 128, 4, 4),  # for checking the script on a CPU
}
# Dense bf16 peaks, as runtime/train/device_peak.cpp (most specific names first).
PEAKS = [("GB300", 2.5e15), ("B300", 2.25e15), ("GB200", 2.5e15), ("B200", 2.25e15), ("GH200", 989e12),
         ("H200 NVL", 835e12), ("H200", 989e12), ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("A100", 312e12)]


class Block(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.hidden, self.heads = hidden, heads
        self.ln_1, self.ln_2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.c_attn, self.c_proj = nn.Linear(hidden, 3 * hidden), nn.Linear(hidden, hidden)
        self.c_fc, self.mlp_proj = nn.Linear(hidden, 4 * hidden), nn.Linear(4 * hidden, hidden)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(self.hidden, dim=2)
        q, k, v = (z.view(b, t, self.heads, self.hidden // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, self.hidden)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self, vocab, context, hidden, layers, heads):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, hidden), nn.Embedding(context, hidden)
        self.h = nn.ModuleList(Block(hidden, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden)
        for name, p in self.named_parameters():  # GPT-2's initialisation
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02 / ((2 * layers) ** 0.5 if name.endswith("proj.weight") else 1))
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


def sdpa_backend(heads, head_dim, seq, device):
    """The SDPA backend torch's dispatcher picks for the model's attention (as Albion logs it)."""
    q = torch.empty(1, heads, seq, head_dim, device=device,
                    dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    names = {0: "math", 1: "flash_attention", 2: "efficient_attention", 3: "cudnn_attention"}
    return names.get(torch._fused_sdp_choice(q, q, q, is_causal=True), "other")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--micro-batch", type=int, default=16)
    parser.add_argument("--accum", type=int, default=4, help="micro-batches per optimizer step")
    parser.add_argument("--preset", choices=PRESETS, default="gpt2")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    args = parser.parse_args()
    vocab, context, hidden, layers, heads = PRESETS[args.preset]
    device = args.device
    torch.manual_seed(1337)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    model = Gpt2(vocab, context, hidden, layers, heads).to(device)
    decayed = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith(("wte", "wpe"))]
    others = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith(("wte", "wpe")))]
    optimizer = torch.optim.AdamW([{"params": decayed, "weight_decay": 0.1}, {"params": others, "weight_decay": 0.0}],
                                  lr=6e-4, betas=(0.9, 0.95), eps=1e-8, fused=device == "cuda")
    step_model = torch.compile(model) if args.compile else model
    tokens_per_step = args.micro_batch * context * args.accum
    data = torch.randint(0, vocab, (args.accum * args.micro_batch, context + 1), device=device)

    times = []
    for _ in range(args.steps):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for micro in range(args.accum):
            batch = data[micro * args.micro_batch:(micro + 1) * args.micro_batch]
            with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
                loss = step_model(batch[:, :-1], batch[:, 1:])
            (loss / args.accum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # the step is done when its loss is on the host, as in Albion's log
        times.append(time.perf_counter() - start)
        if args.compile and len(times) == 1:
            # Inductor's compile-worker processes stay busy after the first step (one process per
            # core importing torch): on a 2-core machine they slowed the next 5 steps 25x. They
            # are not needed once compiled.
            from torch._inductor import async_compile  # (a plain `import torch...` here would shadow torch)
            async_compile.shutdown_compile_workers()
    warmup = min(3, len(times) - 1)
    tokens_per_s = tokens_per_step / statistics.median(times[warmup:])

    # As models::training_flops_per_token: every matrix product's parameters, the tied LM head's too.
    body = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("wte", "wpe")))
    flops_per_token = 6 * (body + vocab * hidden) + 12 * layers * hidden * context
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = next((value for key, value in PEAKS if key in name), None)
    print(json.dumps({
        "run": "pytorch " + ("compile" if args.compile else "eager"),
        "device": name,
        "torch": torch.__version__,
        "tokens_per_s": round(tokens_per_s, 1),
        "mfu": round(flops_per_token * tokens_per_s / peak, 4) if peak else None,
        "peak_memory_bytes": torch.cuda.max_memory_allocated() if device == "cuda" else None,
        "sdpa_backend": sdpa_backend(heads, hidden // heads, context, device),
        "final_loss": round(loss.item(), 4),
        "step_ms": [round(1e3 * t, 1) for t in times],
    }))


if __name__ == "__main__":
    main()
