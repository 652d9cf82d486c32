#!/usr/bin/env bash
# Run one set-up step and say how long it took: scripts/step.sh NAME COMMAND [ARG...]
set -euo pipefail
. "$(dirname "$0")/lib.sh"

name="$1"
shift
started="$(date +%s%N)"
"$@"
tenths=$(( ($(date +%s%N) - started) / 100000000 ))
say "$name: done in $((tenths / 10)).$((tenths % 10))s"
