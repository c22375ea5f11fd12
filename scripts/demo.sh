#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, checks the machine, then runs the
# main job: trains recipes/tiny.ini on two data-parallel ranks started by `albion launch` (a
# character-level GPT-2-style model on the built-in Jane Austen corpus, a few minutes on two CPU
# cores) and prints a text sample at the end. It saves encrypted checkpoints every 200 steps under
# a key it generates once (runs/keys/tiny.kek), in runs/, which recipes/residency-local.json
# declares UK storage for this demo; a second run resumes from the newest one. Then it lists and
# verifies them, generates text with the newest one's model, scores it on the validation split,
# and checks the audit log; last, a short run of a Llama-layout model cut over both ranks (tensor
# parallelism), whose checkpoint is scored and sampled cut the same way. Extra arguments are recipe
# overrides of the main job, e.g.
# scripts/demo.sh --train.steps=100
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
source scripts/env.sh

echo "== albion doctor"
"$build/bin/albion" doctor
echo
echo "== mpirun -np 2 albion doctor --collectives"
mpirun -np 2 --oversubscribe "$build/bin/albion" doctor --collectives
echo
key=runs/keys/tiny.kek
if [ ! -f "$key" ]; then
  mkdir -p runs/keys
  "$build/bin/albion" keys generate --out "$key"
fi
checkpoints=(--checkpoint.interval=200 --checkpoint.key=file:$key --checkpoint.policy=recipes/residency-local.json)
echo "== albion launch -n 2 -- train recipes/tiny.ini ${checkpoints[*]} $*"
"$build/bin/albion" launch -n 2 -- train recipes/tiny.ini "${checkpoints[@]}" "$@"
echo
echo "== albion ckpt list runs/tiny/checkpoints"
"$build/bin/albion" ckpt list runs/tiny/checkpoints
newest=runs/tiny/checkpoints/$(cat runs/tiny/checkpoints/latest)
echo "== albion ckpt verify $newest --key file:$key"
"$build/bin/albion" ckpt verify "$newest" --key "file:$key"
echo "== albion generate $newest --key file:$key --prompt 'Anne Elliot' --tokens 200"
"$build/bin/albion" generate "$newest" --key "file:$key" --prompt 'Anne Elliot' --tokens 200
echo "== albion eval $newest --key file:$key --dataset runs/data/austen-byte"
"$build/bin/albion" eval "$newest" --key "file:$key" --dataset runs/data/austen-byte
echo "== albion ckpt audit runs/tiny/audit.jsonl"
"$build/bin/albion" ckpt audit runs/tiny/audit.jsonl
echo
# Tensor parallelism: the same-sized model in the Llama layout, every layer's attention heads and
# MLP features cut over both ranks (one model, not two replicas).
tensor_parallel=(--model.preset=tiny-llama --parallel.tensor=2 --train.steps=100 --run.dir=runs/tiny-llama-tp2
                 --checkpoint.interval=100 --checkpoint.key=file:$key --checkpoint.policy=recipes/residency-local.json)
echo "== albion launch -n 2 -- train recipes/tiny.ini ${tensor_parallel[*]}"
"$build/bin/albion" launch -n 2 -- train recipes/tiny.ini "${tensor_parallel[@]}"
# Its checkpoint holds the whole model; scored and sampled cut over both ranks again, each rank
# decrypting only its part of the weights, as a model too big for one device would be.
cut=runs/tiny-llama-tp2/checkpoints
echo "== albion launch -n 2 -- eval $cut --key file:$key --dataset runs/data/austen-byte --tensor 2"
"$build/bin/albion" launch -n 2 -- eval "$cut" --key "file:$key" --dataset runs/data/austen-byte --tensor 2
echo "== albion launch -n 2 -- generate $cut --key file:$key --prompt 'Anne Elliot' --tokens 100"
"$build/bin/albion" launch -n 2 -- generate "$cut" --key "file:$key" --prompt 'Anne Elliot' --tokens 100
