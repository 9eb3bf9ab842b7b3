#!/usr/bin/env bash
# Compiles the layers with CPU-specific code (kernels, base, io) for 64-bit ARM, to keep the
# portable baseline building where the x86 kernels do not exist. Needs Debian's
# g++-aarch64-linux-gnu (scripts/setup.sh installs it); exits 0 with a note where it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
CXX=aarch64-linux-gnu-g++
if ! command -v "$CXX" >/dev/null; then
  echo "check_portable: $CXX not installed; skipped"
  exit 0
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for f in src/kernels/*.cpp src/kernels/cpu/*.cpp src/base/*.cpp src/io/*.cpp; do
  # Header-only libraries (nlohmann/json) come from the host's /usr/include, after ARM's own headers.
  if ! "$CXX" -std=c++20 -O1 -Wall -Wextra -Werror -Isrc -idirafter /usr/include -c "$f" -o "$out/$(basename "$f").o"; then
    echo "check_portable: $f does not compile for aarch64" >&2
    status=1
  fi
done
[ $status -eq 0 ] && echo "check_portable: kernels, base and io compile for aarch64"
exit $status
