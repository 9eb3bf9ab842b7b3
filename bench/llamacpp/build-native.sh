#!/usr/bin/env bash
# llama.cpp built from source for this machine (-DGGML_NATIVE=ON), the anchor the prebuilt
# library of node-llama-cpp is not: its generic ISA variants miss instructions the CPU has (on a
# Zen 5 the prebuilt `zen4` library made 38.5 tok/s on BF16 pp128, a native build 67-71).
# The source is the git bundle node-llama-cpp ships (llama/gitRelease.bundle), so no GitHub
# access is needed; it is cloned and built OUTSIDE the repository.
#
#   bench/llamacpp/build-native.sh DIR      # e.g. /work/llama.cpp-native; ~15 min on 2 cores
#
# Afterwards DIR/build/bin holds llama-bench and llama-batched-bench; compare.mjs --native DIR
# runs them next to csq.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[[ $# -eq 1 ]] || { echo "usage: $0 DIR (where to clone and build llama.cpp, outside $repo)" >&2; exit 1; }
dest=$(realpath -m "$1")
case "$dest/" in
  "$repo"/*) echo "error: $dest is inside the repository $repo; build llama.cpp outside it" >&2; exit 1 ;;
esac

bundle="$here/node_modules/node-llama-cpp/llama/gitRelease.bundle"
[[ -f "$bundle" ]] || { echo "error: $bundle not found; run 'npm ci --ignore-scripts' in $here first" >&2; exit 1; }
command -v cmake >/dev/null || { echo "error: cmake not found" >&2; exit 1; }

if [[ -d "$dest/.git" ]]; then
  echo "reusing the clone in $dest" >&2
else
  git -c advice.detachedHead=false clone --quiet "$bundle" "$dest"
fi
info="$here/node_modules/node-llama-cpp/llama/llama.cpp.info.json"
echo "llama.cpp commit $(git -C "$dest" rev-parse --short HEAD) (node-llama-cpp release $(node -p "require('$info').tag" 2>/dev/null || echo '?'))" >&2

jobs=${JOBS:-$(nproc)}
cmake -S "$dest" -B "$dest/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build "$dest/build" -j"$jobs" --target llama-bench llama-batched-bench
ls -l "$dest/build/bin/llama-bench" "$dest/build/bin/llama-batched-bench"
