#!/usr/bin/env bash
# Installs the build dependencies from Debian 12 packages and builds csq (release preset,
# plus the libFuzzer targets). Run from the repository root; uses sudo when not root.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake pkg-config git \
  libgtest-dev libgmock-dev libbenchmark-dev \
  nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libpcre2-dev libicu-dev libsimde-dev \
  clang libclang-rt-14-dev g++-aarch64-linux-gnu qemu-user \
  libyaml-cpp-dev libre2-dev libsimdjson-dev zlib1g-dev libcurl4-openssl-dev libhiredis-dev \
  libvulkan-dev glslc mesa-vulkan-drivers vulkan-tools \
  redis-server nginx-light chromium
# Node.js runs the OpenAI-SDK server test; keep a newer Node if one is already installed.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
(cd tests/server/js && npm ci --no-audit --no-fund)
# The console's browser test drives Debian's chromium: no browser download.
(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
cmake --preset release
cmake --build --preset release -j"$(nproc)"
cmake --preset fuzz
cmake --build --preset fuzz -j"$(nproc)"
