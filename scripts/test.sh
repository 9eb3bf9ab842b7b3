#!/usr/bin/env bash
# Runs every test: unit and fixture tests (CTest), then each fuzzer for a short budget.
# FUZZ_SECONDS (default 20) sets the budget per fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
ctest --preset release -j"$(nproc)"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
