#!/usr/bin/env bash
# Start the Docker engine if none answers, or stop the one this script started.
#
#   scripts/engine.sh start   start dockerd detached (log and pid file in .cache/), wait until it answers
#   scripts/engine.sh stop    stop dockerd, only if this script started it
#
# dockerd is started detached from the caller's output (setsid, output to a
# file): a daemon holding CI's output pipe open would keep the run from ever ending.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PIDFILE="$CACHE/dockerd.pid"
LOG="$CACHE/dockerd.log"
START_TIMEOUT=60
STOP_TIMEOUT=30

answers() { timeout 10 docker version >/dev/null 2>&1; }

ours() {
    # The pid file names a live dockerd (guards against a reused pid).
    [ -f "$PIDFILE" ] || return 1
    local pid; pid="$(cat "$PIDFILE")"
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]
}

start() {
    if answers; then
        say "engine: already running"
        return 0
    fi
    command -v dockerd >/dev/null 2>&1 || die "dockerd is not installed (run scripts/host-packages.sh)"
    need_root "starting dockerd"
    say "engine: starting dockerd (log: $LOG)"
    setsid dockerd >"$LOG" 2>&1 </dev/null &
    local pid=$! waited=0
    echo "$pid" >"$PIDFILE"
    until answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$LOG" >&2 || true
            rm -f "$PIDFILE"
            die "dockerd exited during start-up (see $LOG)"
        fi
        [ "$waited" -lt "$START_TIMEOUT" ] || die "dockerd did not answer within ${START_TIMEOUT}s (see $LOG)"
        sleep 1
        waited=$((waited + 1))
    done
    # dockerd's own pid file is authoritative (setsid may have forked).
    if [ -s /var/run/docker.pid ]; then cp /var/run/docker.pid "$PIDFILE"; fi
    say "engine: up after ${waited}s"
}

stop() {
    if ! ours; then
        rm -f "$PIDFILE"
        say "engine: not started by this project, left alone"
        return 0
    fi
    local pid; pid="$(cat "$PIDFILE")"
    say "engine: stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$STOP_TIMEOUT" ]; do
        sleep 1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "engine: dockerd still running after ${STOP_TIMEOUT}s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop" ;;
esac
