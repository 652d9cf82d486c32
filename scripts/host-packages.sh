#!/usr/bin/env bash
# Install what the host needs and lacks: a Docker engine, debootstrap, npm, tmux.
# Idempotent: installs nothing when every tool is already there.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# The interactive tests drive claude through a real terminal in tmux.
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

if [ "${#missing[@]}" -eq 0 ]; then
    say "host packages: all present"
    exit 0
fi
need_root "installing ${missing[*]}"
say "host packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update </dev/null
apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
