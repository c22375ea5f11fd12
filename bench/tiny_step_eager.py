"""Python PyTorch eager twin of `albion train recipes/tiny.ini` on CPU, for a step-time comparison.

Same model (GPT-2 architecture: 4 layers, hidden 128, 4 heads, context 256, vocab 257 bytes +
<|endoftext|>, tied embeddings, GELU-tanh, pre-LayerNorm, SDPA attention), same batch (2 micro-
batches of 16 x 128 tokens per step), AdamW with the same hyper-parameters and global-norm
clipping, fp32. Prints the median optimizer-step time after warm-up.

    .venv/bin/python bench/tiny_step_eager.py [steps=30]
"""
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, T, H, L, NH = 257, 256, 128, 4, 4
MICRO, SEQ, ACCUM = 16, 128, 2


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(H), nn.LayerNorm(H)
        self.c_attn, self.c_proj = nn.Linear(H, 3 * H), nn.Linear(H, H)
        self.c_fc, self.mlp_proj = nn.Linear(H, 4 * H), nn.Linear(4 * H, H)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(H, dim=2)
        q, k, v = (z.view(b, t, NH, H // NH).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, H)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, H), nn.Embedding(T, H)
        self.h = nn.ModuleList(Block() for _ in range(L))
        self.ln_f = nn.LayerNorm(H)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    torch.manual_seed(1234)
    model = Gpt2()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wte" not in n and "wpe" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "wte" not in n and "wpe" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=2e-3, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    data = torch.randint(0, V, (steps * ACCUM * MICRO, SEQ + 1))
    times = []
    for step in range(steps):
        start = time.perf_counter()
        for micro in range(ACCUM):
            batch = data[(step * ACCUM + micro) * MICRO:(step * ACCUM + micro + 1) * MICRO]
            logits = model(batch[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, V), batch[:, 1:].reshape(-1))
            (loss / ACCUM).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - start)
    median = statistics.median(times[3:])
    print(f"pytorch eager: median step {median * 1000:.1f} ms, {MICRO * SEQ * ACCUM / median:.0f} tokens/s "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
