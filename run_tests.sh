#!/usr/bin/env bash
# The whole test suite: lint, format, types, architecture rules, then every test on the
# embedded SQLite default, and again on PostgreSQL when TEST_DATABASE_URL names a server
# (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test; a database is created and dropped),
# and again on MongoDB when TEST_MONGODB_URI names one (a mongodb:// URL, or `nx` to start the
# nx-27017 stand-in for the run): the services with a MongoDB adapter run on it.
# Extra arguments go to pytest (e.g. ./run_tests.sh -k orders -x).
set -euo pipefail
cd "$(dirname "$0")"
# Bytecode compiled at install: where none is written (PYTHONDONTWRITEBYTECODE) each service
# process would compile FastAPI, SQLAlchemy and PyMongo again, ~5 s, at every start.
uv sync --frozen --quiet --compile-bytecode
redact() { sed -E 's#//[^@/]*@#//***@#' <<<"$1"; }  # a server URL without its credentials
echo "== ruff";          uv run --frozen ruff check .
echo "== ruff format";   uv run --frozen ruff format --check .
echo "== mypy";          uv run --frozen mypy
echo "== import rules";  uv run --frozen lint-imports
echo "== pytest (SQLite)"
env -u TEST_DATABASE_URL -u TEST_MONGODB_URI uv run --frozen pytest "$@"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  echo "== pytest (PostgreSQL: $(redact "$TEST_DATABASE_URL"))"
  env -u TEST_MONGODB_URI uv run --frozen pytest "$@"
fi
if [ -n "${TEST_MONGODB_URI:-}" ]; then
  echo "== pytest (MongoDB: $(redact "$TEST_MONGODB_URI"))"
  env -u TEST_DATABASE_URL uv run --frozen pytest "$@"
fi
