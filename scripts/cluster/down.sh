#!/usr/bin/env bash
# Remove every trace of the test cluster: its pods and daemons (by pid), the kubelet's and
# containerd's mounts, the pods' network namespaces, its bridges and forwarding chain, the
# kubelet's cgroups, and /var/lib/bottle-cluster; restore the sysctls the kubelet rewrote.
# The build cache stays. Works on stale state too (daemons already gone).
set -euo pipefail
here="$(dirname "$0")"
. "$here/lib.sh"
. "$here/pids.sh"

need_root "stopping the test cluster"
if [ ! -d "$STATE" ]; then
    say "cluster: nothing to remove (no $STATE)"
    exit 0
fi
started=$(date +%s)

# The kubelet first, so it restarts nothing; then every container through runc's own state
# (this works with containerd gone too), then the rest in reverse start order.
stop_daemon kubelet
RUNC_ROOT="$STATE/runc/k8s.io"
if [ -d "$RUNC_ROOT" ]; then
    for id in $(timeout 30 runc --root "$RUNC_ROOT" list -q 2>/dev/null); do
        timeout 30 runc --root "$RUNC_ROOT" delete --force "$id" >/dev/null 2>&1 \
            || say "cluster: runc could not delete container $id"
    done
fi
for name in kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do
    stop_daemon "$name"
done
# containerd's shims outlive it by design, and record their pids nowhere; each names our
# private socket on its command line, which no other process does.
sock="$STATE/containerd/containerd.sock"
for proc in /proc/[0-9]*; do
    cmdline="$(tr '\0' ' ' 2>/dev/null <"$proc/cmdline")" || continue
    case "$cmdline" in
        *containerd-shim*" -address $sock "*)
            # Its containers are gone and it holds nothing else; it would only wait out TERM.
            kill -KILL "${proc#/proc/}" 2>/dev/null || true ;;
    esac
done

# Mounts under the state folder (kubelet volumes, container root filesystems, the pods'
# network namespaces), deepest first; a few rounds, as the kubelet shares its root's mounts.
mounts_left() { awk -v root="$STATE/" 'index($5, root) == 1 {print $5}' /proc/self/mountinfo | sort -ru; }
for _ in 1 2 3 4 5; do
    left="$(mounts_left)"
    [ -n "$left" ] || break
    while read -r mountpoint; do
        umount "$mountpoint" 2>/dev/null || umount -l "$mountpoint" 2>/dev/null || true
    done <<<"$left"
done
left="$(mounts_left)"
[ -z "$left" ] || die "cluster: could not unmount, left $STATE in place: $left"

# Pod network namespaces the runtime put in the usual place after all (none expected).
if [ -f "$STATE/netns.before" ]; then
    for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do
        grep -qx "$ns" "$STATE/netns.before" || ip netns delete "$ns" 2>/dev/null || true
    done
fi

# The kubelet's cgroups (cgroupfs driver): empty once the pods are gone.
for controller in /sys/fs/cgroup/*/; do
    if [ -d "$controller/kubepods" ]; then
        find "$controller/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null \
            || say "cluster: could not remove ${controller}kubepods (a process still in it?)"
    fi
done

"$here/net.sh" down

if [ -f "$STATE/sysctls" ]; then
    while IFS== read -r key value; do
        sysctl -q -w "$key=$value" >/dev/null || say "cluster: could not restore $key=$value"
    done <"$STATE/sysctls"
fi

rm -rf --one-file-system "$STATE"
say "cluster: removed in $(( $(date +%s) - started ))s"
