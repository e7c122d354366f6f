#!/usr/bin/env bash
# One-shot, idempotent setup: a virtual environment in .venv with the pinned CPU stack,
# both packages (editable), the offline assets, the cached review snippets and, where we may
# install system packages, Debian's chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.setup-stamp
want=$(cat pyproject.toml instructor/pyproject.toml requirements/*.txt scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
# pip, without the warnings some machines' pip configuration prints for every package (an
# extra index folder that does not hold it: "WARNING: Location ... is ignored") and without
# setuptools' generic note on every editable install; the exit status is pip's.
pip_install() {
  PYTHONWARNINGS=ignore python -m pip install --quiet --no-warn-script-location "$@" \
    2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}
pip_install --upgrade pip
# torch first, from the pinned CPU build, so nothing later pulls a CUDA build. Where the
# package index already offers the +cpu wheel (a local wheel folder, a mirror), take it from
# there; otherwise from PyTorch's own CPU index (PyPI's Linux torch is the CUDA build, which pins
# its own Triton and pulls GBs of NVIDIA packages).
if ! pip_install -c requirements/cpu.txt "torch==2.13.0+cpu" 2>/dev/null; then
  pip_install -c requirements/cpu.txt torch --index-url https://download.pytorch.org/whl/cpu \
    --extra-index-url https://pypi.org/simple
fi
# The student package, then the instructor's tools (release, grading) with the test tools.
pip_install -c requirements/cpu.txt -e ".[kernels,lora,lab,search,interp]" -e "./instructor[distributed,dev]"
pip_install --no-deps -r requirements/assets.txt
python -m ipykernel install --sys-prefix --name python3 >/dev/null
# The browser test drives Debian's chromium (never a downloaded browser build).
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; }) \
    || echo "note: could not install chromium; the browser test will be skipped" >&2
fi
# Fetch and cache the labelled review snippets (vaderSentiment 3.3.2 source distribution).
workbook fetch-data
echo "$want" > "$STAMP"
