#!/usr/bin/env bash
# Builds Albion on a GPU machine that already has a CUDA torch and the system libraries but no
# package registry (the lent H100/H200 machines), then runs the GPU tests and a GPT-2 124M
# throughput run. Logs go to $OUT (or ./gpu-check).
#
#   scripts/gpu_check.sh [python-with-torch] [stages=build,tests,kernels,train]
#
# Stages, to split the work over calls on a warm machine (the build directory stays): build;
# tests (the gpu-labelled tests); kernels (bench/kernel_bandwidth, the fused cross-entropy's peak
# memory against eager at 8,192 tokens x 128,256 vocabulary); train (bench/gpt2_throughput.sh:
# GPT-2 124M with fused kernels on and off, next to PyTorch eager and torch.compile).
#
# Debian packages that machine lacks (headers only: libpcre2-dev, libp11-kit-dev) are expected as
# .deb files in .debs/ and unpacked into a private prefix:
#   apt-get download libpcre2-dev libp11-kit-dev libboost1.74-dev libboost-program-options1.74-dev \
#                    libboost-program-options1.74.0
# (Boost comes whole, headers and library of one version, so they cannot disagree.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${1:-$(command -v python3)}
stages=${2:-build,tests,kernels,train}
stage() { [[ ",$stages," == *",$1,"* ]]; }
out=${OUT:-gpu-check}
mkdir -p "$out"
prefix=/tmp/albion-prefix
lib=$prefix/usr/lib/x86_64-linux-gnu

build=build-gpu
if stage build; then
  for deb in .debs/*.deb; do dpkg -x "$deb" "$prefix"; done
  # The .pc files name /usr; point them at the prefix, and the dev symlink at the system's library.
  sed -i "s|^prefix=.*|prefix=$prefix/usr|" "$lib"/pkgconfig/*.pc
  ln -sf "$(ls /usr/lib/x86_64-linux-gnu/libpcre2-8.so.0* | head -1)" "$lib/libpcre2-8.so"
  export PKG_CONFIG_PATH=$lib/pkgconfig

  # Only this machine's architecture (sm_90 on an H100/H200): a third of the nvcc time.
  arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .' || true)
  cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALBION_PYTHON="$python" \
    ${arch:+-DALBION_CUDA_ARCHITECTURES="$arch-real"} \
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -DCMAKE_INCLUDE_PATH="$prefix/usr/include" \
    -DCMAKE_LIBRARY_PATH="$lib" -DBoost_DIR="$lib/cmake/Boost-1.74.0" \
    -Dboost_program_options_DIR="$lib/cmake/boost_program_options-1.74.0" > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
  cmake --build $build -j "$(nproc)" > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
fi
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

if stage tests; then
  echo "== doctor"
  $build/bin/albion doctor 2>&1 | tee "$out/doctor.log"
  echo "== GPU tests"
  ctest --test-dir $build -L gpu --output-on-failure 2>&1 | tee "$out/gpu_tests.log" | tail -15 || true
fi

if stage kernels; then
  echo "== kernel bandwidth"
  $build/bench/kernel_bandwidth 2>&1 | tee "$out/kernel_bandwidth.log" || echo "kernel_bandwidth failed"
  echo "== fused cross-entropy peak memory, 8,192 tokens x 128,256 vocabulary, hidden 2048"
  for mode in eager chunked; do
    $build/bench/cross_entropy_memory $mode 8192 128256 2048 cuda 2>&1 | tee -a "$out/cross_entropy_memory.log" ||
      echo "cross_entropy_memory $mode failed"
  done
fi

if stage train; then
  echo "== GPT-2 124M throughput: Albion fused / unfused, PyTorch eager / compile"
  bash bench/gpt2_throughput.sh "$build" "$python" 20 "$out/gpt2" 2>&1 | tee "$out/gpt2_throughput.log" ||
    echo "gpt2_throughput failed"
fi
