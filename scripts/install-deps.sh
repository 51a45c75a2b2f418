#!/usr/bin/env bash
# Installs the Debian 12 packages qtensor builds, tests, fuzzes and benchmarks with.
# Skips apt entirely when everything is already there.
set -euo pipefail
packages=(cmake g++ make clang libclang-rt-14-dev libhwy-dev libxsimd-dev doctest-dev libbenchmark-dev nlohmann-json3-dev libopenblas-dev python3-numpy)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "Installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
