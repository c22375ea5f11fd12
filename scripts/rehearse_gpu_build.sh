#!/usr/bin/env bash
# Rehearses scripts/gpu_check.sh's build on this machine (no GPU needed) as the lent GPU machine
# would meet it: without the field's system libraries. In a private mount namespace, every file that
# the system's own copies of the carried packages installed (.debs/, from scripts/gpu_debs.sh) is
# replaced by an empty one, so a build or a program that reaches for one fails. Then the build stage
# runs, and the built programs run their CPU checks in the same namespace.
#
#   scripts/rehearse_gpu_build.sh [command...]     default: build, then the checks below
#
# Needs root (mount namespaces). Runtime libraries that any such image has (OpenSSL's, PCRE2's, the
# curl family's: see `image_has`) stay visible; their headers and the rest do not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/versions.sh
[ "$(id -u)" -eq 0 ] || { echo "rehearse_gpu_build: needs root (unshare -m)"; exit 1; }
compgen -G ".debs/*.deb" >/dev/null || { echo "rehearse_gpu_build: run scripts/gpu_debs.sh first"; exit 1; }

image_has=" libssl3 libpcre2-8-0 libp11-kit0 libcurl4 libnghttp2-14 libidn2-0 libunistring2 libpsl5
  librtmp1 libssh2-1 libgnutls30 libhogweed6 libnettle8 libgmp10 libtasn1-6 libffi8 libgssapi-krb5-2
  libkrb5-3 libk5crypto3 libkrb5support0 libldap-2.5-0 libsasl2-2 libbrotli1 libzstd1 libudev1
  libuuid1 libatomic1 "
image_has=" $(echo $image_has) "  # one line, so the last name of each line matches too
hidden=$(mktemp /tmp/rehearse-hidden.XXXXXX)
for pkg in "${ALBION_GPU_MACHINE_DEBS[@]}"; do
  [[ $image_has == *" $pkg "* ]] && continue
  { dpkg-query -L "$pkg" 2>/dev/null || true; } | while read -r f; do
    # Boost's 14,000 headers: one mount for the folder instead.
    [[ $f == /usr/include/boost/* ]] && continue
    if [ -f "$f" ] && [ ! -L "$f" ]; then echo "$f"; fi
  done
done > "$hidden"
[ -d /usr/include/boost ] && echo "dir /usr/include/boost" >> "$hidden"
echo "rehearse_gpu_build: hiding $(wc -l < "$hidden") system files of the carried packages"

# gpu_check.sh's prefix, named once for both.
export ALBION_GPU_PREFIX=${ALBION_GPU_PREFIX:-/tmp/albion-prefix}
default_checks='
  set -eo pipefail
  bash scripts/gpu_check.sh python3 build  # as the device call runs it: python3 from PATH
  echo "== every program and library of the prefix finds what it loads in the prefix"
  # Outside it only what any image has: glibc, the C++ and GCC runtimes, zlib.
  find "$ALBION_GPU_PREFIX" -type f \( -name "*.so*" -o -path "*/bin/*" \) | while read -r elf; do
    file -b "$elf" | grep -q ELF || continue
    ldd "$elf" 2>/dev/null | grep "=>" | grep -v " => $ALBION_GPU_PREFIX/" |
      grep -v -E "^\s*(libc|libm|libdl|libpthread|librt|libresolv|libutil|libstdc\+\+|libgcc_s|libz)\.so" |
      sed "s#^#$elf: #" || true
  done > /tmp/rehearse-outside.txt
  if [ -s /tmp/rehearse-outside.txt ]; then cat /tmp/rehearse-outside.txt; exit 1; fi
  ldd build-gpu/bin/albion | grep -E "mpi|open-pal|hdf5|boost|sentencepiece|pcre2|crypto"
  echo "== CPU checks of the built programs"
  export OPAL_PREFIX=$ALBION_GPU_PREFIX/usr OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  build-gpu/bin/albion doctor || true
  ctest --test-dir build-gpu -L cpu -j "$(nproc)" --output-on-failure
  echo "== the gpu-labelled tests start (and skip: no GPU here)"
  ctest --test-dir build-gpu -L gpu -j "$(nproc)" --output-on-failure | tail -3
  echo "== two ranks under the prefix'"'"'s mpirun"
  "$ALBION_GPU_PREFIX/wrappers/mpiexec" -np 2 --oversubscribe build-gpu/tests/collectives_test \
    --gtest_filter=-*Cuda.* --gtest_brief=1
  echo "== the train stage, on the CPU (tiny models): albion train, PyTorch eager and compile"
  SMOKE=1 bash bench/train_throughput.sh build-gpu "$ALBION_REHEARSE_PYTHON" 4 /tmp/rehearse-gpt2 gpt2
  SMOKE=1 bash bench/train_throughput.sh build-gpu "$ALBION_REHEARSE_PYTHON" 4 /tmp/rehearse-llama llama
'
python=${ALBION_REHEARSE_PYTHON:-$PWD/.venv/bin/python}
export ALBION_REHEARSE_PYTHON=$python ALBION_GPU_COMPUTE_CAP=${ALBION_GPU_COMPUTE_CAP:-9.0}
export PATH="$(dirname "$python"):$PATH"
if [ $# -eq 0 ]; then set -- bash -c "$default_checks"; fi
# A Python helper bind-mounts an empty file over each hidden file, then becomes the command.
exec unshare -m --propagation private /usr/bin/python3 - "$hidden" "$@" <<'PY'
import ctypes, os, sys, tempfile
libc = ctypes.CDLL(None, use_errno=True)
MS_BIND = 4096
empty_file = tempfile.mkstemp(prefix="rehearse-empty.")[1]
empty_dir = tempfile.mkdtemp(prefix="rehearse-empty.")
def mount(source, target, fstype=None, flags=MS_BIND):
    if libc.mount(source.encode(), target.encode(), fstype, flags, None) != 0:
        sys.exit(f"rehearse_gpu_build: cannot hide {target}: {os.strerror(ctypes.get_errno())}")
for line in open(sys.argv[1]):
    path = line.rstrip("\n")
    if path.startswith("dir "):
        mount(empty_dir, path[4:])
    else:
        mount(empty_file, path)
os.execvp(sys.argv[2], sys.argv[2:])
PY
