#!/usr/bin/env bash
# Start all six services on 8001..8006 against the embedded SQLite default. Ctrl-C stops them.
set -euo pipefail
cd "$(dirname "$0")"
uv sync --quiet --compile-bytecode  # see run_tests.sh
exec uv run retail up "$@"
