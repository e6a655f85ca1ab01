#!/usr/bin/env bash
# The test command: sets up .venv if needed, then runs the whole suite on the real components
# (real bpy renders at tiny sizes, real Anny bodies, real data from ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
. .venv/bin/activate
export SYNTH_TEST_DATA=${SYNTH_TEST_DATA:-$(cd .. && pwd)/shared/data}
exec python -m pytest -q "$@"
