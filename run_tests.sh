#!/usr/bin/env bash
# The whole test suite: lint, format, types, architecture rules, then every test.
# Extra arguments go to pytest (e.g. ./run_tests.sh -k orders -x).
set -euo pipefail
cd "$(dirname "$0")"
uv sync --frozen --quiet
echo "== ruff";          uv run --frozen ruff check .
echo "== ruff format";   uv run --frozen ruff format --check .
echo "== mypy";          uv run --frozen mypy
echo "== import rules";  uv run --frozen lint-imports
echo "== pytest";        uv run --frozen pytest "$@"
