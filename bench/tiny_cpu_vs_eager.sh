#!/usr/bin/env bash
# CPU step time of `albion train recipes/tiny.ini` next to its PyTorch eager twin
# (bench/tiny_step_eager.py), alternating A B A B in one run on the same machine.
#   bench/tiny_cpu_vs_eager.sh [rounds=2] [steps=30]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-2}
steps=${2:-30}
run_dir=$(mktemp -d)
for round in $(seq "$rounds"); do
  rm -rf "$run_dir/tiny"
  build/bin/albion train recipes/tiny.ini --run.dir="$run_dir/tiny" --train.steps="$steps" \
    --optim.warmup_steps=3 --log.interval=1 --eval.interval=0 --eval.sample_tokens=0 >/dev/null 2>&1
  .venv/bin/python - "$run_dir/tiny/metrics.jsonl" <<'PY'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1]) if "loss" in line]
seconds = [4096 / r["tokens_per_s"] for r in records[3:]]
median = statistics.median(seconds)
print(f"albion:        median step {median * 1000:.1f} ms, {4096 / median:.0f} tokens/s")
PY
  .venv/bin/python bench/tiny_step_eager.py "$steps"
done
rm -rf "$run_dir"
