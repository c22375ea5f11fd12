#!/usr/bin/env bash
# LoRA against full fine-tuning of GPT-2 124M on this machine's CPU, alternating full, LoRA, full,
# LoRA ... in one run: median step time and tokens/s, peak memory (RSS on CPU), AdamW state, and
# the size of the encrypted checkpoint each run ends with. The base is a random GPT-2 124M saved by
# transformers (save_pretrained), the data Persuasion tokenised with the GPT-2 tokenizer.
#   bench/lora_vs_full.sh [rounds=2] [steps=8] [lora_rank=8]     (ALBION_BENCH_DIR=DIR keeps the runs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-2}
steps=${2:-8}
rank=${3:-8}
work=${ALBION_BENCH_DIR:-$(mktemp -d)}
[ -n "${ALBION_BENCH_DIR:-}" ] || trap 'rm -rf "$work"' EXIT

.venv/bin/python - "$work/gpt2-hf" <<'PY'
import sys, torch, transformers
torch.manual_seed(0)
transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(sys.argv[1])
PY
build/bin/albion data prepare --input recipes/corpus/austen/persuasion.txt --output "$work/data" \
  --tokenizer hf:tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json >/dev/null
build/bin/albion keys generate --out "$work/kek" >/dev/null
mkdir -p "$work/runs"
cat > "$work/policy.json" <<JSON
{"format": "albion-residency-policy/1", "roots": [{"path": "$work/runs", "jurisdiction": "UK"}]}
JSON

run() {  # name, extra recipe overrides...
  local name=$1; shift
  rm -rf "$work/runs/$name"
  build/bin/albion train recipes/gpt2_124m.ini --run.device=cpu --precision.dtype=fp32 --run.dir="$work/runs/$name" \
    --data.dataset="$work/data" --model.init="$work/gpt2-hf" --train.seq_len=256 --train.micro_batch=4 \
    --train.global_batch_tokens=1024 --train.steps="$steps" --optim.warmup_steps=1 --log.interval=1 \
    --eval.interval=0 --eval.sample_tokens=0 --log.tensorboard=false --checkpoint.interval="$steps" \
    --checkpoint.key="file:$work/kek" --checkpoint.policy="$work/policy.json" --checkpoint.async=false \
    "$@" > "$work/runs/$name.log" 2>&1
  .venv/bin/python - "$name" "$work/runs/$name" "$work/runs/$name.log" <<'PY'
import json, os, re, statistics, sys
name, run, log = sys.argv[1:]
records = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl")) if '"loss"' in line]
seconds = [1024 / r["tokens_per_s"] for r in records[2:]]  # the first steps warm up
state = float(re.search(r"optimizer state: ([0-9.]+) MiB", open(log).read()).group(1))
step_dir = max(os.scandir(os.path.join(run, "checkpoints")), key=lambda e: e.name if e.name.startswith("step-") else "")
ckpt = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(step_dir.path) for f in fs)
print(f"{name:5s}  median step {statistics.median(seconds):6.2f} s  {1024 / statistics.median(seconds):6.0f} tokens/s"
      f"  peak RSS {records[-1]['peak_memory_bytes'] / 2**30:5.2f} GiB  AdamW state {state:7.1f} MiB"
      f"  checkpoint {ckpt / 2**20:7.1f} MiB  final loss {records[-1]['loss']:.4f}")
PY
}

for round in $(seq "$rounds"); do
  run full
  run lora --lora.rank="$rank"
done
