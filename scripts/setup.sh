#!/usr/bin/env bash
# Installs everything Albion needs on a Debian 12 machine, idempotently, then configures and
# builds it. A second run skips every install that is already satisfied and only rebuilds.
#
#   scripts/setup.sh            install what is missing, configure, build
#   scripts/setup.sh --no-build install only
#
# Environment:
#   ALBION_PYTHON   use this Python (with its own torch) instead of creating .venv; for machines that
#                   already ship a CUDA torch and have no package registry.
#   ALBION_BUILD    build directory (default: build)
#   ALBION_JOBS     parallel compile jobs (default: number of cores)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
# shellcheck source=scripts/versions.sh
source scripts/versions.sh

build_after_install=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build_after_install=0 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup.sh: error: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf 'setup: %s\n' "$*"; }

# A fresh .venv (torch with its CUDA libraries, 5 GiB) and build (5 GiB) need about 11 GiB; a disk
# that fills halfway shows up as a failed link long after the cause, so say it up front.
free_gib=$(df --output=avail -BG "$here" | tail -1 | tr -dc '0-9')
if [ ! -d "${ALBION_BUILD:-build}" ] && [ "${free_gib:-0}" -lt 12 ]; then
  log "warning: only ${free_gib} GiB free under $here; a fresh setup and build need about 11 GiB"
fi

# --- Debian packages -----------------------------------------------------------------------------
missing_debs=()
for pkg in "${ALBION_DEBIAN_PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
    missing_debs+=("$pkg")
  fi
done
if [ ${#missing_debs[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing_debs[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing_debs[@]}" >/dev/null
else
  log "Debian packages: all ${#ALBION_DEBIAN_PACKAGES[@]} present"
fi

# --- CUDA toolkit (shipped with the machine image; no registry here carries CUDA 13) -------------
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
if [ ! -x "$nvcc" ]; then
  echo "setup: error: CUDA toolkit ${ALBION_CUDA_MAJOR}.x not found at $nvcc;" \
       "install it (NVIDIA's cuda-toolkit-${ALBION_CUDA_MAJOR}-0) or set CUDACXX" >&2
  exit 1
fi
nvcc_version=$("$nvcc" --version | sed -n 's/.*release \([0-9]*\)\.\([0-9]*\).*/\1.\2/p')
if [ "${nvcc_version%%.*}" != "$ALBION_CUDA_MAJOR" ]; then
  echo "setup: error: $nvcc is CUDA $nvcc_version; Albion's torch wheel needs CUDA ${ALBION_CUDA_MAJOR}.x" >&2
  exit 1
fi
log "CUDA toolkit $nvcc_version at $(dirname "$(dirname "$nvcc")")"

# --- Python environment with the pinned torch wheel ----------------------------------------------
if [ -n "${ALBION_PYTHON:-}" ]; then
  python=$ALBION_PYTHON
  log "using existing Python $python (ALBION_PYTHON)"
else
  if [ ! -x .venv/bin/python ]; then
    log "creating virtual environment .venv"
    python3 -m venv .venv
  fi
  python=.venv/bin/python
  wanted=$(grep -vE '^\s*(#|$)' scripts/requirements.txt | sort | tr '\n' ' ')
  if [ "$(cat .venv/.albion-requirements 2>/dev/null)" != "$wanted" ]; then
    log "installing Python packages: $wanted"
    "$python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
    printf '%s' "$wanted" > .venv/.albion-requirements
  else
    log "Python packages: all pinned versions present"
  fi
fi
"$python" - <<EOF
import sys, torch
major = (torch.version.cuda or "none").split(".")[0]
if major != "$ALBION_CUDA_MAJOR":
    sys.exit(f"setup: error: torch {torch.__version__} is built for CUDA {torch.version.cuda}; "
             f"need a CUDA $ALBION_CUDA_MAJOR build (pip install torch==$ALBION_TORCH_VERSION)")
print(f"setup: torch {torch.__version__} (CUDA {torch.version.cuda})")
EOF

[ "$build_after_install" -eq 1 ] || exit 0

# --- Configure and build -------------------------------------------------------------------------
# CMake from the Python environment (pinned in requirements.txt), else the one on PATH.
cmake=$(dirname "$python")/cmake
[ -x "$cmake" ] || cmake=cmake
build=${ALBION_BUILD:-build}
jobs=${ALBION_JOBS:-$(nproc)}
if [ ! -f "$build/build.ninja" ]; then
  log "configuring $build/"
  "$cmake" -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DALBION_PYTHON="$(cd "$(dirname "$python")" && pwd)/$(basename "$python")"
fi
log "building with $jobs jobs"
"$cmake" --build "$build" -j "$jobs"
