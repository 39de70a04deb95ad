#!/usr/bin/env bash
# Installs what grurec needs to build and test on Debian 12 (apt-get, as root or via sudo).
# CUDA/cuBLAS/NCCL are optional and come from the CUDA toolkit at /usr/local/cuda.
# usage: launch/install-deps.sh [--tests]
#   --tests  also what the full test suite needs (the README's test command and .ci/run):
#            chromium (tests/report_test.sh renders RUN/report.html) and slurm-wlm,
#            slurm-wlm-basic-plugins (srun --mpi=pmix) and munge (tests/slurm_test.sh starts
#            a single-node Slurm cluster). Not dependencies of grurec itself: where one
#            cannot be installed this says so and goes on, and that test skips, visibly.
set -euo pipefail
packages=(build-essential cmake pkg-config
          libhdf5-dev hdf5-tools libopenmpi-dev openmpi-bin
          libopenblas-dev zlib1g-dev libdeflate-dev libcriterion-dev)
# For --tests: one group per test, "test: packages".
test_groups=("report_test: chromium"
             "slurm_test: slurm-wlm slurm-wlm-basic-plugins munge")
tests=0
case ${1:-} in
--tests) tests=1 ;;
"") ;;
*) echo "usage: launch/install-deps.sh [--tests]" >&2; exit 2 ;;
esac

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing() { local p; for p in "$@"; do installed "$p" || echo "$p"; done; }
updated=0
apt_install() {
    if [ -n "$sudo" ] && ! command -v sudo >/dev/null; then
        echo "install-deps: run as root or install sudo" >&2
        return 1
    fi
    if [ $updated = 0 ]; then
        $sudo apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null || true
        updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "$@"
}

mapfile -t need < <(missing "${packages[@]}")
if [ ${#need[@]} -eq 0 ]; then
    echo "install-deps: all ${#packages[@]} packages present"
else
    echo "install-deps: installing ${need[*]}"
    apt_install "${need[@]}"
fi
[ $tests = 1 ] || exit 0
for group in "${test_groups[@]}"; do
    test=${group%%:*}
    read -ra pkgs <<<"${group#*:}"
    mapfile -t need < <(missing "${pkgs[@]}")
    [ ${#need[@]} -gt 0 ] || { echo "install-deps: for $test: ${pkgs[*]} present"; continue; }
    echo "install-deps: for $test: installing ${need[*]}"
    apt_install "${need[@]}" >/dev/null ||
        echo "install-deps: ${need[*]} could not be installed: $test will skip"
done
