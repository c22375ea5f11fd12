#!/usr/bin/env bash
# Builds Albion on a GPU machine that already has a CUDA torch and the system libraries but no
# package registry (the lent H100/H200 machines), then runs the GPU tests and a GPT-2 124M
# throughput run. Logs go to $OUT (or ./gpu-check).
#
#   scripts/gpu_check.sh [python-with-torch]
#
# Debian packages that machine lacks (headers only: libpcre2-dev, libp11-kit-dev) are expected as
# .deb files in .debs/ and unpacked into a private prefix:
#   apt-get download libpcre2-dev libp11-kit-dev libboost1.74-dev libboost-program-options1.74-dev \
#                    libboost-program-options1.74.0
# (Boost comes whole, headers and library of one version, so they cannot disagree.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${1:-$(command -v python3)}
out=${OUT:-gpu-check}
mkdir -p "$out"
prefix=/tmp/albion-prefix
lib=$prefix/usr/lib/x86_64-linux-gnu

for deb in .debs/*.deb; do dpkg -x "$deb" "$prefix"; done
# The .pc files name /usr; point them at the prefix, and the dev symlink at the system's library.
sed -i "s|^prefix=.*|prefix=$prefix/usr|" "$lib"/pkgconfig/*.pc
ln -sf "$(ls /usr/lib/x86_64-linux-gnu/libpcre2-8.so.0* | head -1)" "$lib/libpcre2-8.so"
export PKG_CONFIG_PATH=$lib/pkgconfig
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

build=build-gpu
cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALBION_PYTHON="$python" \
  -DCMAKE_POLICY_VERSION_MINIMUM=3.5 -DCMAKE_INCLUDE_PATH="$prefix/usr/include" \
  -DCMAKE_LIBRARY_PATH="$lib" -DBoost_DIR="$lib/cmake/Boost-1.74.0" \
  -Dboost_program_options_DIR="$lib/cmake/boost_program_options-1.74.0" > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
cmake --build $build -j "$(nproc)" > "$out/build.log" 2>&1 || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }

echo "== doctor"
$build/bin/albion doctor 2>&1 | tee "$out/doctor.log"
echo "== GPU tests"
ctest --test-dir $build -L gpu --output-on-failure 2>&1 | tee "$out/gpu_tests.log" | tail -15 || true

echo "== gpt2_124m: 50 steps, bf16, on the built-in corpus with a 3k-token BPE"
$build/bin/albion train recipes/gpt2_124m.ini --run.dir="$out/gpt2_124m" \
  --data.dataset=/tmp/austen-gpt2 --data.inputs=recipes/corpus/austen \
  --data.tokenizer=hf:tests/runtime/tokenizers/fixtures/gpt2/tokenizer.json --data.val_fraction=0.05 \
  --train.micro_batch=32 --train.steps=50 --optim.warmup_steps=10 --eval.interval=0 \
  --eval.sample_tokens=0 --log.interval=10 2>&1 | grep -v "^[a-z_]* = \|^\[\|^$\|^#" | tee "$out/gpt2_124m.log"
