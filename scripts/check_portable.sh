#!/usr/bin/env bash
# 64-bit ARM: compiles the layers with CPU-specific code (kernels, base, io) for aarch64, so the
# build stays portable where the x86 kernel files compile to nothing, then links
# tests/cross/neon_check.cpp against the kernels and runs it under qemu-aarch64: the NEON kernels
# against the row model, bit for bit. Needs Debian's g++-aarch64-linux-gnu and qemu-user
# (scripts/setup.sh installs both); skips what it cannot do, saying so.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=aarch64-linux-gnu-g++
if ! command -v "$CXX" >/dev/null; then
  echo "check_portable: $CXX not installed; skipped"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(-std=c++20 -O2 -Wall -Wextra -Werror -Isrc -Itests)
status=0
for f in src/kernels/*.cpp src/kernels/cpu/*.cpp src/base/*.cpp src/io/*.cpp; do
  # libcurl's headers are installed for the host architecture only (Debian multiarch), and the
  # download code has nothing CPU-specific: it is left to the native build.
  if grep -q '#include <curl/' "$f"; then
    echo "check_portable: $f uses libcurl (host headers only); not cross-compiled"
    continue
  fi
  # Header-only libraries (nlohmann/json) come from the host's /usr/include, after ARM's own headers.
  if ! "$CXX" "${flags[@]}" -idirafter /usr/include -c "$f" -o "$out/$(echo "$f" | tr / _).o"; then
    echo "check_portable: $f does not compile for aarch64" >&2
    status=1
  fi
done
[ $status -eq 0 ] || exit $status
echo "check_portable: kernels, base and io compile for aarch64"

"$CXX" "${flags[@]}" -static -pthread tests/cross/neon_check.cpp "$out"/src_kernels_*.o "$out"/src_base_*.o -o "$out/neon_check"
if ! command -v qemu-aarch64 >/dev/null; then
  echo "check_portable: qemu-aarch64 not installed; neon_check built, not run"
  exit 0
fi
qemu-aarch64 "$out/neon_check"
