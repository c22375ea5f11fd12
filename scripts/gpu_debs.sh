#!/usr/bin/env bash
# Downloads the Debian packages the lent GPU machine lacks (ALBION_GPU_MACHINE_DEBS in
# scripts/versions.sh) into .debs/, on a machine with Debian 12's registry. The device call then
# names .debs in `carry`, and scripts/gpu_check.sh unpacks them there. Idempotent: a second run
# keeps what is already downloaded and removes packages no longer listed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/versions.sh
mkdir -p .debs
cd .debs
wanted=()
for pkg in "${ALBION_GPU_MACHINE_DEBS[@]}"; do
  compgen -G "${pkg}_*.deb" >/dev/null || wanted+=("$pkg")
done
[ ${#wanted[@]} -eq 0 ] || apt-get -o APT::Sandbox::User=root download -q "${wanted[@]}" >/dev/null
for deb in *.deb; do
  listed=0
  for pkg in "${ALBION_GPU_MACHINE_DEBS[@]}"; do [[ $deb == "${pkg}"_* ]] && listed=1; done
  [ $listed -eq 1 ] || rm -- "$deb"
done
echo "gpu_debs: $(ls ./*.deb | wc -l) packages, $(du -sh . | cut -f1), in .debs/"
