#!/usr/bin/env bash
# The README's second command: installs what is missing, builds, then runs the whole test suite
# (labels cpu, mpi, gpu; GPU tests skip without a device). Extra arguments go to ctest, e.g.
#   scripts/test.sh -L gpu        only the GPU tests (on a machine with a GPU)
#   scripts/test.sh -R rmsnorm    tests whose name matches
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
source scripts/env.sh
"$ctest" --test-dir "$build" --output-on-failure -j "$(nproc)" "$@"
