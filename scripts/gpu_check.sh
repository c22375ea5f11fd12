#!/usr/bin/env bash
# Builds Albion on a GPU machine that has a CUDA toolkit, a CUDA torch, a compiler, CMake and ninja
# but no package registry (the lent H100/H200 machines), then runs the kernel benchmarks, the GPU
# tests and a GPT-2 124M throughput run. Logs go to $OUT (or ./gpu-check).
#
#   scripts/gpu_check.sh [python-with-torch] [stages=build,kernels,tests,train]
#
# Stages, run in this order whatever order they are named in: build (only the programs the named
# stages run; everything when `build` is named alone); kernels (bench/kernel_bandwidth, the fused
# cross-entropy's peak memory against eager at 8,192 tokens x 128,256 vocabulary, fp32 and under
# bf16 autocast); tests (the gpu-labelled tests); train (bench/train_throughput.sh: GPT-2 124M with
# fused kernels on and off, next to PyTorch eager and torch.compile, then each Albion run's
# costliest kernels from a profiled window; then Llama 3.2 1B with fused kernels on and off). Every
# call ends with bench/check_targets.py: each target, met or missed.
# One device call runs them all: with ALBION_GPU_BUDGET_S (the call's seconds, e.g. 30 under its
# timeout) each stage gets at most what is left, so the verdicts still come back when the build or
# a stage runs long, and a second call names only the stages that did not finish. A lent machine
# stays warm only ~30 s after a call: name `build` in every call (a no-op when the build directory
# is still there, a rebuild when the machine is fresh).
#
# That machine has none of the field's system libraries (OpenMPI, HDF5, Boost, OpenSSL's headers,
# GoogleTest, ...). They come as Debian 12 packages: run scripts/gpu_debs.sh on a machine with the
# registry, name .debs in the device call's `carry` (git-ignored, ~33 MB), and the build stage
# unpacks them into a private prefix and builds against that prefix only, whatever the machine has
# of its own. scripts/rehearse_gpu_build.sh tries this on a machine without a GPU, with the
# system's copies hidden.
#
# $OUT returns at most 8 files, named [A-Za-z0-9._-]: runs and datasets live in $work, and $OUT
# gets the logs below (doctor's in gpu_tests.log, both training runs' in train_throughput.log) plus
# gpt2_results.jsonl and llama_results.jsonl: 8 files, nothing else.
# Environment: ALBION_GPU_BUDGET_S (see above; unset: no limit), ALBION_GPU_WORK (runs;
# /tmp/albion-gpu-check), ALBION_GPU_PREFIX (the unpacked packages; /tmp/albion-prefix),
# ALBION_GPU_COMPUTE_CAP (e.g. 9.0, instead of asking nvidia-smi).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# An absolute path: CMake checks that it exists.
python=$(command -v "${1:-python3}") || { echo "gpu_check: no python ${1:-python3}"; exit 1; }
stages=${2:-build,kernels,tests,train}
stage() { [[ ",$stages," == *",$1,"* ]]; }
budget=${ALBION_GPU_BUDGET_S:-0}
# bounded SECONDS COMMAND...: COMMAND for at most SECONDS, and no longer than the budget leaves
# (20 s of it kept for the verdicts at the end); not started when under 10 s are left.
bounded() {
  local limit=$1; shift
  if [ "$budget" -gt 0 ] && [ $((budget - 20 - SECONDS)) -lt "$limit" ]; then limit=$((budget - 20 - SECONDS)); fi
  if [ "$limit" -lt 10 ]; then echo "gpu_check: out of time for: $*"; return 124; fi
  timeout -k 10 "$limit" "$@"
}
out=${OUT:-gpu-check}
work=${ALBION_GPU_WORK:-/tmp/albion-gpu-check}
mkdir -p "$out" "$work"
prefix=${ALBION_GPU_PREFIX:-/tmp/albion-prefix}
usr=$prefix/usr
lib=$usr/lib/x86_64-linux-gnu
wrappers=$prefix/wrappers
# Where the prefix's libraries are (a few Debian 12 packages still install into /lib).
run_path=$lib:$lib/openmpi/lib:$prefix/lib/x86_64-linux-gnu

# OpenMPI from the prefix finds its components, help texts and daemon relative to OPAL_PREFIX.
# (Under mpirun, which one GPU does not need, PMIx still looks for three optional components of
# its own in /usr and says so; it goes on without them.)
export OPAL_PREFIX=$usr

build=build-gpu
if stage build; then
  compgen -G ".debs/*.deb" >/dev/null ||
    { echo "gpu_check: no .debs/*.deb (run scripts/gpu_debs.sh, and carry .debs in the device call)"; exit 1; }
  for tool in dpkg cmake ninja nvcc; do
    command -v "$tool" >/dev/null || { echo "gpu_check: $tool not found on this machine"; exit 1; }
  done
  command -v c++ >/dev/null || command -v g++ >/dev/null || { echo "gpu_check: no C++ compiler"; exit 1; }
  gpu=$(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -1 || true)
  # The image's versions, for the log (its CMake, say, is whatever pip installed there).
  echo "gpu_check: $(cmake --version | head -1); nvcc $(nvcc --version | grep -o 'release [0-9.]*');" \
    "$(c++ --version 2>/dev/null | head -1 || g++ --version | head -1);" \
    "torch $("$python" -c 'import torch; print(torch.__version__)' 2>&1 | tail -1); ${gpu:-no nvidia-smi}"
  # Debian 12's libraries need glibc 2.36 (libevent, under OpenMPI, uses its newest symbols).
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | cut -d' ' -f2 || true)
  if [ -n "$glibc" ] && [ "$(printf '%s\n2.36\n' "$glibc" | sort -V | head -1)" != 2.36 ]; then
    echo "gpu_check: glibc $glibc here; the carried Debian 12 libraries need 2.36"; exit 1
  fi
  # Unpacked again only when the packages change (dpkg keeps their files' times, but a second
  # build on a warm machine should not even look).
  if [ "$(cat "$prefix/.debs" 2>/dev/null)" != "$(ls .debs)" ]; then
    rm -rf "$prefix"
    for deb in .debs/*.deb; do dpkg -x "$deb" "$prefix"; done
    # Debian's programs and libraries find each other in /usr (the cache, and run paths such as
    # OpenMPI's and UCX's, which also hide our binaries' run path from them): each one's own run
    # path moves into the prefix, then the prefix's library folders follow.
    find "$prefix" -type f \( -name "*.so*" -o -path "*/bin/*" \) ! -name patchelf | while read -r elf; do
      [ "$(head -c 4 "$elf" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] || continue  # \177ELF
      own=$("$usr/bin/patchelf" --print-rpath "$elf" | sed -E "s#(^|:)/#\1$prefix/#g")
      "$usr/bin/patchelf" --force-rpath --set-rpath "${own:+$own:}$run_path" "$elf"
    done
    # The one link a package's install script makes that OpenMPI's components load (PSM).
    ln -sf ../libpsm1/libpsm_infinipath.so.1.16 "$lib/libpsm_infinipath.so.1"
    ls .debs > "$prefix/.debs"
    rm -f "$build/CMakeCache.txt"  # a new prefix: every library is looked for again
  fi

  # Wrappers give the prefix's tools their settings: pkg-config reads the prefix's .pc files only,
  # and prepends the prefix to the /usr paths they name; OpenMPI's look in OPAL_PREFIX.
  mkdir -p "$wrappers"
  wrap() {
    printf '#!/bin/sh\nexport %s\nexec %s "$@"\n' "$2" "$3" > "$wrappers/$1"
    chmod +x "$wrappers/$1"
  }
  wrap pkg-config "PKG_CONFIG_LIBDIR=$lib/pkgconfig:$usr/share/pkgconfig PKG_CONFIG_SYSROOT_DIR=$prefix" "$usr/bin/pkgconf"
  wrap mpicxx "OPAL_PREFIX=$usr" "$usr/bin/mpicxx.openmpi"
  wrap mpiexec "OPAL_PREFIX=$usr" "$usr/bin/mpiexec.openmpi"

  # Only this machine's architecture (sm_90 on an H100/H200), for our kernels and for the flags
  # torch's CMake config adds to every .cu file (TORCH_CUDA_ARCH_LIST, else sm_90 and sm_100).
  cap=${ALBION_GPU_COMPUTE_CAP:-$(tr -d ' ' <<< "${gpu##*,}")}
  arch=${cap//./}
  # Each library named by where the prefix has it: CMake would otherwise take a copy of the
  # machine's own first (FindMPI asks the mpicxx on PATH; the other modules search /usr). FindHDF5
  # would ask an h5cc on PATH: a "wrapper" that fails makes it search the include and library
  # paths, where the prefix comes first.
  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALBION_PYTHON="$python" \
    ${arch:+-DALBION_CUDA_ARCHITECTURES="$arch-real"} ${cap:+-DTORCH_CUDA_ARCH_LIST="$cap"} \
    -DALBION_CLANGXX=OFF -DALBION_EMULATED_TESTS=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    -DCMAKE_PREFIX_PATH="$usr" -DCMAKE_INCLUDE_PATH="$usr/include" -DCMAKE_LIBRARY_PATH="$lib" \
    -DALBION_EXTRA_RUN_PATH="${run_path//:/;}" \
    -DPKG_CONFIG_EXECUTABLE="$wrappers/pkg-config" \
    -DMPI_CXX_COMPILER="$wrappers/mpicxx" -DMPIEXEC_EXECUTABLE="$wrappers/mpiexec" \
    -DOPENSSL_ROOT_DIR="$usr" -DHDF5_C_COMPILER_EXECUTABLE=/bin/false \
    -DBoost_DIR="$lib/cmake/Boost-1.74.0" -Dboost_program_options_DIR="$lib/cmake/boost_program_options-1.74.0" \
    > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  # Nothing may come from the machine's own copies of what the prefix carries: every path CMake
  # found for these libraries lies in the prefix.
  outside=$(grep -E "^(MPI|HDF5|OpenSSL|OPENSSL|Boost|boost|GTest|nlohmann|PCRE2|SENTENCEPIECE|pkgcfg_lib|ALBION_PKCS11)[A-Za-z0-9_]*:[A-Z]*=" \
              $build/CMakeCache.txt | cut -d= -f2- | tr ';' '\n' | grep "^/" | grep -v -e "^$prefix/" -e "^/bin/false$" || true)
  if [ -n "$outside" ]; then
    echo "gpu_check: the build found these outside $prefix:" $outside; exit 1
  fi
  # Only what the named stages run (the gpu-labelled tests' programs are NAME for test NAME_cuda):
  # from nothing on 2 cores, 343 s against 447 s for the whole tree (rehearsed, no compiler cache).
  targets=()
  if [ "$stages" != build ]; then
    targets=(albion)
    if stage kernels; then targets+=(kernel_bandwidth cross_entropy_memory); fi
    if stage tests; then
      targets+=($(ctest --test-dir $build -N -L gpu | sed -n 's/^ *Test *#[0-9]*: \(.*\)_cuda$/\1/p'))
    fi
  fi
  cmake --build $build -j "$(nproc)" ${targets[@]:+--target "${targets[@]}"} > "$out/build.log" 2>&1 ||
    { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
  echo "gpu_check: built ${targets[*]:-everything} (${SECONDS} s since the start)"
  # And the built program loads the prefix's copies (its run path, not the machine's cache).
  loaded=$(ldd $build/bin/albion)
  outside=$(grep -E "(mpi|open-pal|open-rte|hdf5|boost|sentencepiece|pcre2|crypto|pmix|hwloc|event).* => " <<< "$loaded" |
              grep -v " => $prefix/" || true)
  if [ -n "$outside" ] || grep -q "not found" <<< "$loaded"; then
    echo "gpu_check: albion loads libraries from outside $prefix:"; grep -v " => $prefix/" <<< "$loaded"; exit 1
  fi
fi
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

if stage kernels; then
  echo "== kernel bandwidth (${SECONDS} s since the start)"
  bounded 240 $build/bench/kernel_bandwidth 2>&1 | tee "$out/kernel_bandwidth.log" || echo "kernel_bandwidth failed"
  echo "== fused cross-entropy peak memory, 8,192 tokens x 128,256 vocabulary, hidden 2048"
  for precision in fp32 bf16; do
    for mode in eager chunked; do
      bounded 120 $build/bench/cross_entropy_memory $mode 8192 128256 2048 cuda $precision 2>&1 |
        tee -a "$out/cross_entropy_memory.log" || echo "cross_entropy_memory $mode $precision failed"
    done
  done
fi

if stage tests; then
  echo "== doctor (${SECONDS} s since the start)"
  bounded 60 $build/bin/albion doctor 2>&1 | tee "$out/gpu_tests.log" ||
    echo "doctor reported a problem (above); going on"
  echo "== GPU tests"
  # Bounded: a hung test would otherwise hold the call for its 300 s TIMEOUT.
  bounded 240 ctest --test-dir $build -L gpu -j 4 --output-on-failure 2>&1 | tee -a "$out/gpu_tests.log" |
    tail -15 || true
fi

if stage train; then
  echo "== GPT-2 124M throughput: Albion fused / unfused, PyTorch eager / compile (${SECONDS} s since the start)"
  bounded 480 bash bench/train_throughput.sh "$build" "$python" 20 "$work/gpt2" gpt2 2>&1 |
    tee "$out/train_throughput.log" || echo "GPT-2 train_throughput failed"
  cp "$work/gpt2/results.jsonl" "$out/gpt2_results.jsonl" 2>/dev/null || true
  echo "== Llama 3.2 1B throughput: Albion fused / unfused (${SECONDS} s since the start)"
  bounded 240 bash bench/train_throughput.sh "$build" "$python" 10 "$work/llama" llama 2>&1 |
    tee -a "$out/train_throughput.log" || echo "Llama train_throughput failed"
  cp "$work/llama/results.jsonl" "$out/llama_results.jsonl" 2>/dev/null || true
fi

echo "== targets (${SECONDS} s since the start)"
"$python" bench/check_targets.py "$out" || true
