#!/usr/bin/env bash
# Installs what grurec needs to build and test on Debian 12 (apt-get, as root or via sudo).
# CUDA/cuBLAS/NCCL are optional and come from the CUDA toolkit at /usr/local/cuda.
set -euo pipefail
packages=(build-essential cmake pkg-config
          libhdf5-dev hdf5-tools libopenmpi-dev openmpi-bin
          libopenblas-dev zlib1g-dev libdeflate-dev libcriterion-dev)
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo" >&2; exit 1; }
    sudo="sudo"
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present"
    exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=600 update -q
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
