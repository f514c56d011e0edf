#!/usr/bin/env bash
# OpenStack conformance: Tempest's API tests against a fresh all-in-one of this tree (fake driver, 4 hosts).
#
#   scripts/conformance.sh [--regex REGEX] [--concurrency N] [SERVICE ...]
#
# SERVICE: identity image network volume compute (default: the first four). Without --regex each service's whole
# `tempest.api.SERVICE` part runs and docs/conformance/SERVICE.md and docs/conformance.md are written; with --regex
# only the matching tests run and the failures, grouped by cause, are printed. Work files: .conformance/SERVICE/.
# Tempest 47 is installed on first use into $TEMPEST_VENV (default ~/.cache/pocketstack-tempest/venv).
# POCKETSTACK_PYTHON: the Python with pocketstack's dependencies (default .venv/bin/python, made by install.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${POCKETSTACK_PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || bash "$ROOT/scripts/install.sh"
cd "$ROOT"
PYTHONPATH=$ROOT exec "$PY" "$ROOT/scripts/conformance.py" "$@"
