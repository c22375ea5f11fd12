#!/usr/bin/env bash
# Training throughput on one GPU, in one run on one machine: Albion with its fused kernels on and
# off (`model.fused_kernels`); for GPT-2 124M also the same model in plain PyTorch, eager and
# torch.compile'd (bench/gpt2_step_torch.py).
#
#   bench/train_throughput.sh [build-dir=build] [python=.venv/bin/python] [steps=20] [out=bench-out/gpt2]
#                             [model=gpt2|llama]
#
# Every run: bf16 autocast over fp32 parameters, the Austen corpus in GPT-2's tokenizer. gpt2:
# micro-batches of 16 x 1024 tokens, 4 per optimizer step (65,536 tokens); then two short profiled
# runs (fused and unfused) print where a step's time goes. llama: Llama 3.2 1B (its 128,256-row
# vocabulary, of which the data uses GPT-2's ids), micro-batches of 8 x 1024, 2 per step (16,384
# tokens): the norms' residual adds and bf16 operands, RoPE and SwiGLU against torch's ops. tokens/s:
# median over the steps after the first 3; MFU: the same formula and peak table for all; peak
# memory: the CUDA caching allocator's. SMOKE=1 runs a tiny model of the architecture on the CPU
# instead, to check the script itself.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
python=${2:-.venv/bin/python}
steps=${3:-20}
out=${4:-bench-out/gpt2}
model=${5:-gpt2}
mkdir -p "$out"
if [ "${SMOKE:-0}" = 1 ]; then
  recipe=recipes/tiny.ini device=cpu micro=4 seq=256 accum=2
  data=(--data.dataset="$out/data-tiny")  # tiny.ini's own corpus and byte tokenizer
  case $model in gpt2) preset=tiny ;; llama) preset=tiny-llama ;; esac
else
  recipe=recipes/gpt2_124m.ini device=cuda seq=1024
  data=(--data.dataset="$out/data-gpt2" --data.inputs=recipes/corpus/austen --data.val_fraction=0.05
        --data.tokenizer=hf:tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json)
  case $model in gpt2) preset=gpt2 micro=16 accum=4 ;; llama) preset=llama-3.2-1b micro=8 accum=2 ;; esac
fi
[ -n "${preset:-}" ] || { echo "train_throughput: model must be gpt2 or llama, not '$model'" >&2; exit 2; }

# albion train NAME FUSED STEPS [more overrides]: the benchmark's run, its log in $out/NAME.log.
albion_train() {
  local name=$1 fused=$2 run_steps=$3
  shift 3
  "$build/bin/albion" train "$recipe" --run.dir="$out/$name" "${data[@]}" --run.device="$device" \
    --model.preset="$preset" --model.fused_kernels="$fused" --train.seq_len="$seq" --train.micro_batch="$micro" \
    --train.global_batch_tokens=$((micro * seq * accum)) --train.steps="$run_steps" --optim.warmup_steps=2 \
    --eval.interval=0 --eval.sample_tokens=0 --log.interval=1 --log.tensorboard=false --checkpoint.interval=0 \
    "$@" >"$out/$name.log" 2>&1 || { tail -5 "$out/$name.log" >&2; return 1; }
}

# One JSON line per run, like gpt2_step_torch.py's, from Albion's metrics and log.
albion_run() {
  local name=$1 fused=$2
  albion_train "$name" "$fused" "$steps" || return 1
  "$python" - "$name" "$out/$name" <<'PY'
import json, re, statistics, sys
name, run_dir = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(run_dir + "/metrics.jsonl") if '"tokens_per_s"' in l]
later = [r for r in rows if r["step"] >= 3] or rows
mfus = [r["mfu"] for r in later if r["mfu"] is not None]
log = open(run_dir + ".log").read()
backend = re.search(r"attention: torch SDPA, backend (\S+)", log)
print(json.dumps({"run": name, "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in later), 1),
                  "mfu": round(statistics.median(mfus), 4) if mfus else None,
                  "peak_memory_bytes": max(r["peak_memory_bytes"] for r in rows),
                  "sdpa_backend": backend.group(1) if backend else None, "final_loss": round(rows[-1]["loss"], 4)}))
PY
}

# A run that fails is reported and skipped: the others still run (set -e would end the group).
# The plain-PyTorch twin is GPT-2's only.
{
  albion_run "albion fused" true || echo "albion fused: FAILED (see $out/albion fused.log)" >&2
  albion_run "albion unfused" false || echo "albion unfused: FAILED (see $out/albion unfused.log)" >&2
  [ "$model" = gpt2 ] || exit 0
  "$python" bench/gpt2_step_torch.py --preset "$preset" --device "$device" --steps "$steps" \
    --micro-batch "$micro" --accum "$accum" || echo "pytorch eager: FAILED" >&2
  "$python" bench/gpt2_step_torch.py --preset "$preset" --device "$device" --steps "$steps" \
    --micro-batch "$micro" --accum "$accum" --compile || echo "pytorch compile: FAILED" >&2
} 2> >(tee "$out/stderr.log" | grep -E "FAILED|Error|error" >&2) | tee "$out/results.jsonl"

"$python" - "$out/results.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
if not runs:
    sys.exit("no run finished")
base = next((r for r in runs if r["run"] == "albion fused"), runs[0])["tokens_per_s"]
print(f"\n{'run':<16} {'tokens/s':>10} {'vs fused':>9} {'MFU':>7} {'peak GiB':>9}  sdpa")
for r in runs:
    mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "-"
    peak = f"{r['peak_memory_bytes'] / 2**30:.2f}" if r.get("peak_memory_bytes") else "-"
    print(f"{r['run']:<16} {r['tokens_per_s']:>10.0f} {r['tokens_per_s'] / base:>8.2f}x {mfu:>7} {peak:>9}  "
          f"{r.get('sdpa_backend') or '-'}")
PY

# Where a step's time goes, fused and unfused: torch's profiler over steps 4-5 of two short runs,
# apart from the timed runs above (GPT-2's; a Llama call keeps its time for the timed runs). Each
# run's trace and full table: $out/<name>/profile/.
[ "$model" = gpt2 ] || exit 0
for fused in true false; do
  name="albion profile fused=$fused"
  rm -rf "${out:?}/$name"
  summary="$out/$name/profile/rank0.summary.txt"
  albion_train "$name" "$fused" 5 --profile.start_step=4 --profile.steps=2 || true
  if [ -f "$summary" ]; then
    echo "== $name"
    cat "$summary"
  else
    echo "$name: FAILED, no profile (see $out/$name.log)" >&2
  fi
done
