#!/usr/bin/env bash
# The Vulkan backend on a lent GPU (the `device` tool's machine), in one run:
#   1. the loader: unpack the carried Debian packages when the machine has no libvulkan
#      (prepare them once as the device tool's README says: .gl/*.deb, carried as `.gl`);
#   2. csq info --devices (the GPU must be listed, not only a CPU device);
#   3. every Vulkan kernel test and engine fixture check (csq_tests, the Vulkan suites; on a GPU
#      with VK_NV_cooperative_matrix the cooperative kernel's tests run instead of skipping);
#   4. csq_vulkan_matmul_bench: vector vs tiled vs cooperative GFLOP/s per weight type on a
#      Qwen3-4B FFN-sized matrix (9728 x 2560);
#   5. csq bench --device vulkan on synthetic Qwen3-4B BF16 and Q4_K_M (pp512, tg128, 1/8/32
#      streams), with the CPU figure of the same files for scale.
# Needs build/csq, build/tests/csq_tests and build/bench/csq_vulkan_matmul_bench built for that
# machine (carry `build`, or build
# there with scripts/setup.sh's packages), the shared fixtures at $CSQ_FIXTURES
# (default ../shared/fixtures) and about 12 GB of disk for the two synthetic models.
#   bench/vulkan_device.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/csq-vulkan}}
mkdir -p "$out"
csq=build/csq

if ! ldconfig -p | grep -q libvulkan.so.1; then
  if ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
  else
    echo "vulkan_device: no libvulkan.so.1 and no carried .gl/*.deb; see the device tool's README" >&2
  fi
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi

echo "== devices"
"$csq" info --devices | tee "$out/devices.txt"
"$csq" info --devices --json >"$out/devices.json"

echo "== kernel tests and fixture checks on vulkan:0"
build/tests/csq_tests --gtest_filter='Vulkan*:*/Vulkan*:Vulkan/*:CliDevice.*' 2>&1 | tee "$out/tests.txt" | tail -5
grep -c 'OK .*_cooperative' "$out/tests.txt" | sed 's/^/cooperative-kernel tests passed: /'

echo "== matrix kernels (GFLOP/s)"
build/bench/csq_vulkan_matmul_bench 0 9728 2560 BF16 F16 Q8_0 Q4_K Q6_K | tee "$out/matmul.txt"

for type in BF16 Q4_K_M; do
  model="$out/qwen3-4b-$type.gguf"
  [ -f "$model" ] || "$csq" synth --arch qwen3 --preset 4b --type "$type" --out "$model" >/dev/null
  echo "== $type: vulkan"
  "$csq" bench --model "$model" --device vulkan -p 512 -n 128 -r 3 --json | tee "$out/bench-$type-vulkan.json" |
    grep -E '"test"|"avg_ts"'
  "$csq" bench --model "$model" --device vulkan -p 128 -n 64 --streams 1,8,32 --json |
    tee "$out/bench-$type-vulkan-streams.json" | grep -E '"test"|"streams"|_ts"'
  echo "== $type: cpu ($(nproc) threads)"
  "$csq" bench --model "$model" -p 64 -n 16 -r 1 -t "$(nproc)" --json >"$out/bench-$type-cpu.json"
  grep -E '"test"|"avg_ts"' "$out/bench-$type-cpu.json"
done
echo "results in $out"
