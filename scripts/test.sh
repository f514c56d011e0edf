#!/usr/bin/env bash
# Run the whole test suite from a clean clone: install what is missing, start the local backing services
# the distributed tests use, lint, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
bash scripts/services.sh
.venv/bin/ruff check pocketstack tests bench
exec .venv/bin/pytest "$@"
