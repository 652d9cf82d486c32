# The cluster's daemons by pid file: which are alive, stopping them. Sourced, not run.

# The daemons in start order; stopped in reverse.
DAEMONS=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet)

# alive NAME: NAME's recorded pid is a live process running NAME (guards against a reused pid).
alive() {
    local file="$PIDS/$1.pid" pid
    [ -s "$file" ] || return 1
    pid="$(cat "$file")"
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1"
}

# stop_pid PID NAME: TERM, up to 20 s for it to exit, then KILL.
stop_pid() {
    local pid="$1" name="$2" waited=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge 20 ]; then
            say "cluster: $name (pid $pid) ignored TERM for 20s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
            return 0
        fi
        sleep 1
        waited=$((waited + 1))
    done
}

# stop_daemon NAME: stop NAME if its pid file names it alive.
stop_daemon() {
    if alive "$1"; then
        stop_pid "$(cat "$PIDS/$1.pid")" "$1"
    fi
    rm -f "$PIDS/$1.pid"
}
