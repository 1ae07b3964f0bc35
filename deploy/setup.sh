#!/usr/bin/env bash
# Set up Lodestar on this machine: a virtualenv in .venv with Lodestar and its
# test tools installed (re-installed only when pyproject.toml changes).
# Usage: source-free; run `bash deploy/setup.sh`. Prints what it does.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: Lodestar needs Python 3.11 or newer (found: $("$python" --version 2>&1))." >&2
  exit 1
fi
if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
  echo "error: the local Kafka needs Java 17+ and Maven (apt-get install openjdk-17-jre-headless maven)," >&2
  echo "       or set LODESTAR_KAFKA_BOOTSTRAP to an existing Kafka." >&2
  [ -n "${LODESTAR_KAFKA_BOOTSTRAP:-}" ] || exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating virtualenv .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.lodestar-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Lodestar and its test tools into .venv (first time takes a few minutes)"
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e ".[test]"
  echo "$want" > "$stamp"
else
  echo "==> .venv is up to date"
fi
