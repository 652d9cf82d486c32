#!/usr/bin/env bash
# Run the demo: the demo agent in a real bottle with the real claude binary,
# answered by a scripted model server on a local docker network. Needs the
# set-up of `make setup images` (engine, base image, venv, bottle images).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || die "no virtualenv at $ROOT/.venv (run: make venv)"
docker version >/dev/null 2>&1 || die "no Docker engine answers (run: make engine)"

cd "$ROOT"
# exec: the demo gets Ctrl-C and SIGTERM itself and removes everything it made.
exec "$PY" scripts/demo.py "$@"
