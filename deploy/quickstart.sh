#!/usr/bin/env bash
# Set up and run Lodestar on the local defaults, send demo events, show where to look.
#   1. .venv with Lodestar (deploy/setup.sh)
#   2. the local stack: Kafka (KRaft), PostgreSQL, and `lodestar api` + `lodestar worker`
#   3. `lodestar demo`: Amplify-shaped sessions through PutEvents, counted in ClickHouse
# Stop everything with: python3 deploy/stack.py down
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash deploy/setup.sh
echo "==> starting the local stack and Lodestar"
.venv/bin/python deploy/stack.py up --with-lodestar
echo "==> sending demo events"
.venv/bin/lodestar demo --timeout 60
cat <<MSG

Lodestar is running:
  API (Pinpoint shapes)   http://${LODESTAR_API_HOST:-127.0.0.1}:${LODESTAR_API_PORT:-8080}/v1/apps/demo/events
  worker web              ${LODESTAR_WORKER_URL:-http://127.0.0.1:6066}/healthz
  event counts            .venv/bin/lodestar events count --app-id demo
  status / logs           python3 deploy/stack.py status   |   python3 deploy/stack.py logs worker
  stop everything         python3 deploy/stack.py down
MSG
