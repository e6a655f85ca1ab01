#!/usr/bin/env bash
# Creates .venv with everything synth needs (idempotent; a second run only checks).
# torch is pinned to the CPU wheel 2.13.0 and installed first: any other torch spec would pull
# gigabytes of CUDA wheels. bpy 5.0.1 needs numpy<2.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.synth-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install -q --upgrade pip
  python -m pip install -q "torch==2.13.0"
  python -m pip install -q -e ".[test]"
  touch "$stamp"
fi
python -c "import bpy, anny, torch, cv2; print('synth environment ready: bpy', bpy.app.version_string, '| torch', torch.__version__)"
