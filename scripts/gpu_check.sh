#!/usr/bin/env bash
# Builds Albion on a GPU machine that already has a CUDA torch and the system libraries but no
# package registry (the lent H100/H200 machines), then runs the GPU tests and a GPT-2 124M
# throughput run. Logs go to $OUT (or ./gpu-check).
#
#   scripts/gpu_check.sh [python-with-torch] [stages=build,tests,kernels,train]
#
# Stages, to split the work over calls on a warm machine (the build directory stays): build;
# tests (the gpu-labelled tests); kernels (bench/kernel_bandwidth, the fused cross-entropy's peak
# memory against eager at 8,192 tokens x 128,256 vocabulary, fp32 and under bf16 autocast); train
# (bench/gpt2_throughput.sh: GPT-2 124M with fused kernels on and off, next to PyTorch eager and
# torch.compile). Every call ends with bench/check_targets.py: each target, met or missed.
# A lent machine stays warm only ~30 s after a call: name `build` in every call (a no-op when the
# build directory is still there, a rebuild when the machine is fresh).
#
# Debian packages that machine lacks (headers only: libpcre2-dev, libp11-kit-dev) are expected as
# .deb files in .debs/ and unpacked into a private prefix (.debs/ is git-ignored: the device call
# must name it in `carry`):
#   apt-get download libpcre2-dev libp11-kit-dev libboost1.74-dev libboost-program-options1.74-dev \
#                    libboost-program-options1.74.0
# (Boost comes whole, headers and library of one version, so they cannot disagree.)
#
# $OUT returns at most 8 files, named [A-Za-z0-9._-]: runs and datasets live in $work, and $OUT
# gets the logs below plus gpt2_results.jsonl, nothing else.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${1:-$(command -v python3)}
stages=${2:-build,tests,kernels,train}
stage() { [[ ",$stages," == *",$1,"* ]]; }
out=${OUT:-gpu-check}
work=${ALBION_GPU_WORK:-/tmp/albion-gpu-check}
mkdir -p "$out" "$work"
prefix=/tmp/albion-prefix
lib=$prefix/usr/lib/x86_64-linux-gnu

build=build-gpu
if stage build; then
  # Everything the configure step will look for, reported at once (cmake stops at the first).
  compgen -G ".debs/*.deb" >/dev/null || { echo "gpu_check: no .debs/*.deb (carry .debs in the device call)"; exit 1; }
  for deb in .debs/*.deb; do dpkg -x "$deb" "$prefix"; done
  missing=()
  cuda_include=$(dirname "$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)")/../targets/x86_64-linux/include
  have() { for d in /usr/include /usr/include/hdf5/serial /usr/lib/x86_64-linux-gnu/openmpi/include "$cuda_include" \
                    "$prefix/usr/include" "$prefix/usr/include/p11-kit-1"; do [ -e "$d/$1" ] && return 0; done; return 1; }
  # cublas_v2.h & co.: ATen/cuda/CUDAEvent.h (collectives/nccl_communicator.cpp) includes them.
  for h in mpi.h hdf5.h openssl/evp.h nlohmann/json.hpp gtest/gtest.h sentencepiece_processor.h pcre2.h \
           p11-kit/pkcs11.h boost/program_options.hpp cublas_v2.h cublasLt.h cusparse.h cusolverDn.h; do
    have "$h" || missing+=("$h")
  done
  for tool in pkg-config cmake ninja nvcc; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  command -v mpicxx >/dev/null || missing+=("mpicxx (openmpi-bin/libopenmpi-dev)")
  # Advisory (MPI may live outside these folders, found through mpicxx): cmake has the last word.
  if [ ${#missing[@]} -gt 0 ]; then echo "gpu_check: probably missing on this machine: ${missing[*]}"; fi

  # The .pc files name /usr; point them at the prefix, and the dev symlink at the system's library.
  sed -i "s|^prefix=.*|prefix=$prefix/usr|" "$lib"/pkgconfig/*.pc
  ln -sf "$(ls /usr/lib/x86_64-linux-gnu/libpcre2-8.so.0* | head -1)" "$lib/libpcre2-8.so"
  export PKG_CONFIG_PATH=$lib/pkgconfig

  # Only this machine's architecture (sm_90 on an H100/H200), for our kernels and for the flags
  # torch's CMake config adds to every .cu file (TORCH_CUDA_ARCH_LIST, else sm_90 and sm_100).
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ' || true)
  arch=${cap//./}
  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALBION_PYTHON="$python" \
    ${arch:+-DALBION_CUDA_ARCHITECTURES="$arch-real"} ${cap:+-DTORCH_CUDA_ARCH_LIST="$cap"} \
    -DALBION_CLANGXX=OFF -DALBION_EMULATED_TESTS=OFF \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -DCMAKE_INCLUDE_PATH="$prefix/usr/include" \
    -DCMAKE_LIBRARY_PATH="$lib" -DBoost_DIR="$lib/cmake/Boost-1.74.0" \
    -Dboost_program_options_DIR="$lib/cmake/boost_program_options-1.74.0" > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  cmake --build $build -j "$(nproc)" > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
fi
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

if stage tests; then
  echo "== doctor"
  $build/bin/albion doctor 2>&1 | tee "$out/doctor.log" || echo "doctor reported a problem (above); going on"
  echo "== GPU tests"
  # Bound the stage: a hung test would otherwise hold the call for its 300 s TIMEOUT.
  timeout -k 10 240 ctest --test-dir $build -L gpu --output-on-failure 2>&1 | tee "$out/gpu_tests.log" | tail -15 || true
fi

if stage kernels; then
  echo "== kernel bandwidth"
  $build/bench/kernel_bandwidth 2>&1 | tee "$out/kernel_bandwidth.log" || echo "kernel_bandwidth failed"
  echo "== fused cross-entropy peak memory, 8,192 tokens x 128,256 vocabulary, hidden 2048"
  for precision in fp32 bf16; do
    for mode in eager chunked; do
      $build/bench/cross_entropy_memory $mode 8192 128256 2048 cuda $precision 2>&1 |
        tee -a "$out/cross_entropy_memory.log" || echo "cross_entropy_memory $mode $precision failed"
    done
  done
fi

if stage train; then
  echo "== GPT-2 124M throughput: Albion fused / unfused, PyTorch eager / compile"
  bash bench/gpt2_throughput.sh "$build" "$python" 20 "$work/gpt2" 2>&1 | tee "$out/gpt2_throughput.log" ||
    echo "gpt2_throughput failed"
  cp "$work/gpt2/results.jsonl" "$out/gpt2_results.jsonl" 2>/dev/null || true
fi

echo "== targets"
"$python" bench/check_targets.py "$out" || true
