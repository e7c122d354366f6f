#!/usr/bin/env bash
# One-shot, idempotent setup: a virtual environment in .venv with the pinned CPU stack,
# the project (editable), the offline assets, and the cached review snippets.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.setup-stamp
want=$(cat pyproject.toml requirements/*.txt scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch first, from the pinned CPU build, so nothing later pulls a CUDA build.
python -m pip install --quiet -c requirements/cpu.txt torch
python -m pip install --quiet -c requirements/cpu.txt -e ".[kernels,lora,distributed,dev]"
python -m pip install --quiet --no-deps -r requirements/assets.txt
python -m ipykernel install --sys-prefix --name python3 >/dev/null
# Fetch and cache the labelled review snippets (vaderSentiment 3.3.2 source distribution).
workbook fetch-data
echo "$want" > "$STAMP"
