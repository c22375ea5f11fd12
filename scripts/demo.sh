#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, then runs the main job.
# Until the trainer lands (issue #4) the main job is the machine check: `albion doctor`, then a
# 2-rank MPI job in which every rank verifies exact all-reduces (and NCCL where GPUs exist).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
source scripts/env.sh

echo "== albion doctor"
"$build/bin/albion" doctor
echo
echo "== mpirun -np 2 albion doctor --collectives"
mpirun -np 2 --oversubscribe "$build/bin/albion" doctor --collectives
