#!/usr/bin/env bash
# Issue 19's acceptance figures in one unattended run (bench/llamacpp/figures.mjs: csq against
# llama.cpp built for this machine and the prebuilt library, passes alternating, medians).
#
#   bench/cpu_figures.sh --models DIR [--native DIR] [--hf DIR] [--passes 3] [--stream-passes 1]
#                        [--streams 1,4,8,16] [--streams-model Q4_K_M,BF16,Q8_0] [-p 128] [-n 32]
#                        [-t 2] [--json FILE] [--csq PATH]
#
# DIR holds *BF16.gguf, *Q4_K_M.gguf and *Q8_0.gguf (csq synth --preset 4b --type T --out ...) and
# may hold the Hugging Face directory of the BF16 model (csq synth --preset 4b --type BF16
# --format hf --out DIR/qwen3-4b-BF16-hf), measured as one more csq row (or name it with --hf);
# --native is a build-native.sh directory. The defaults (3 passes, 1 of streams on Q4_K_M) take
# about 20 min on 2 cores with the three synthetic Qwen3-4B models and the directory;
# --streams-model Q4_K_M,BF16,Q8_0 adds about 10 min. Try --model small=FILE.gguf --passes 1 first.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
args=("$@")
[[ " ${args[*]} " == *" --csq "* ]] || args=(--csq "$repo/build/csq" "${args[@]}")
exec node "$here/llamacpp/figures.mjs" "${args[@]}"
