#!/usr/bin/env bash
# The flash-attention GPU proof (issue 25), run from the source tree with no install:
#   bash scripts/gpu-proof.sh --out "$OUT/proof" [--quick] [--budget-s 420]
# Correctness, speed and memory on one CUDA GPU in at most about 8 minutes; five files in the
# --out folder (proof.json, proof.md, tflops.png, memory.png, proof.log). Exit status: 0 done,
# 1 a correctness check failed (nothing timed), 2 no CUDA or a bad argument, 3 unexpected error.
# PYTHON picks the interpreter (default python3, the one that holds torch on the device image).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$ROOT/src:$ROOT/instructor${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python3}" -m workbook_instructor.bench.proof "$@"
