#!/usr/bin/env bash
# Data-parallel benchmarks on this machine, in one run:
#   1. step time on 2 ranks with gradient buckets all-reduced during backward (parallel.overlap
#      = true) vs after it (false), alternating A B A B so drift hits both;
#   2. AdamW state and peak memory per rank, DDP vs ZeRO-1 vs ZeRO-2, on 1, 2 and 4 ranks.
# Usage: bench/data_parallel.sh [ROUNDS] (default 3). Needs a built build/bin/albion.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
rounds=${1:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
albion=build/bin/albion
# GPT-2 124M on bytes, short sequences: 124M parameters = 0.5 GB of fp32 gradients per step, so
# communication is a real share of the step even on CPU.
common=(train recipes/tiny.ini --model.preset=gpt2 --train.seq_len=64 --train.micro_batch=1
        --optim.warmup_steps=1 --eval.interval=0 --eval.sample_tokens=0
        --log.interval=1 --log.tensorboard=false)
[ -d runs/data/austen-byte ] || "$albion" "${common[@]}" --train.global_batch_tokens=64 --train.steps=1 --run.dir="$out/prepare" >/dev/null 2>&1

# Median seconds per step over steps 3.. of a run's metrics.jsonl.
step_seconds() {
  python3 - "$1" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '"tokens_per_s"' in line]
rates = [r["tokens_per_s"] for r in rows if r["step"] >= 2]
print(f"{128 / statistics.median(rates):.3f}")
PY
}

echo "# step time, GPT-2 124M, 2 CPU ranks, 64 tokens per rank per step (median s/step)"
printf "%-8s %-10s %-10s %s\n" round overlap sync ratio
[ "$rounds" -gt 0 ] && for round in $(seq "$rounds"); do
  for overlap in true false; do
    mpirun -np 2 "$albion" "${common[@]}" --train.steps=8 --train.global_batch_tokens=128 --parallel.overlap=$overlap \
      --run.dir="$out/$overlap-$round" >/dev/null 2>&1
  done
  a=$(step_seconds "$out/true-$round/metrics.jsonl")
  b=$(step_seconds "$out/false-$round/metrics.jsonl")
  printf "%-8s %-10s %-10s %s\n" "$round" "$a" "$b" "$(python3 -c "print(f'{$b/$a:.3f}')")"
done

echo
echo "# AdamW state and peak memory per rank (MiB, rank 0), GPT-2 124M, 2 micro-batches a step"
printf "%-6s %-18s %-18s %-18s\n" ranks "ddp state/peak" "zero1 state/peak" "zero2 state/peak"
for ranks in 1 2 4; do
  row=()
  for zero in 0 1 2; do
    mpirun -np $ranks --oversubscribe "$albion" "${common[@]}" --train.steps=2 --parallel.zero=$zero \
      --train.global_batch_tokens=$((128 * ranks)) --run.dir="$out/zero$zero-$ranks" > "$out/zero$zero-$ranks.log" 2>&1
    state=$(sed -n 's/.*optimizer state: \([0-9.]*\) MiB.*/\1/p' "$out/zero$zero-$ranks.log")
    peak=$(python3 - "$out/zero$zero-$ranks/metrics.jsonl" <<'PY'
import json, sys
print(round(max(json.loads(line).get("peak_memory_bytes", 0) for line in open(sys.argv[1])) / 2**20))
PY
)
    row+=("$state/$peak")
  done
  printf "%-6s %-18s %-18s %-18s\n" "$ranks" "${row[0]}" "${row[1]}" "${row[2]}"
done
