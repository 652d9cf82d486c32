#!/usr/bin/env bash
# Make the virtualenv .venv if missing, and install bottle-core, the backends
# (editable) and the test extras into it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    say "venv: creating $VENV"
    python3 -m venv "$VENV"
fi
say "venv: installing bottle-core, bottle-docker, bottle-smol, bottle-k8s (editable) and test extras"
cd "$ROOT"
"$VENV/bin/python" -m pip install --quiet -e '.[test]' -e plugins/docker_backend -e plugins/smol_backend -e plugins/k8s_backend </dev/null
