#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, checks the machine, then runs the
# main job: trains recipes/tiny.ini on two data-parallel ranks started by `albion launch` (a
# character-level GPT-2-style model on the built-in Jane Austen corpus, a few minutes on two CPU
# cores) and prints a text sample at the end. Extra arguments are recipe overrides, e.g.
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
echo "== albion launch -n 2 -- train recipes/tiny.ini $*"
"$build/bin/albion" launch -n 2 -- train recipes/tiny.ini "$@"
