#!/usr/bin/env bash
# Set up and run Lodestar's tests: virtualenv, local stack (Kafka, PostgreSQL;
# ClickHouse is embedded), then lint, type-check and pytest.
# The stack is stopped again afterwards if this script started it.
# Extra arguments go to pytest (e.g. `bash deploy/test.sh tests/core -x`).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash deploy/setup.sh

started_stack=0
if ! .venv/bin/python deploy/stack.py status >/dev/null 2>&1; then
  echo "==> starting the local stack"
  .venv/bin/python deploy/stack.py up
  started_stack=1
fi
stop_stack() {
  if [ "$started_stack" = 1 ] && [ "${LODESTAR_TEST_KEEP_STACK:-0}" != 1 ]; then
    echo "==> stopping the local stack"
    .venv/bin/python deploy/stack.py down || true
  fi
}
trap stop_stack EXIT

echo "==> ruff"
.venv/bin/ruff check services tests bench deploy
echo "==> mypy --strict (lodestar.core)"
.venv/bin/python -m mypy
echo "==> pytest"
LODESTAR_TEST_KEEP_STACK=1 .venv/bin/pytest "$@"
