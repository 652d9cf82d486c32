#!/usr/bin/env bash
# Build the test cluster's Kubernetes binaries and pause image from Debian's `kubernetes`
# source package, once per source version, into /var/cache/bottle-cluster/<version>/.
# Prints that folder. A cached version is used as is: nothing is fetched or rebuilt.
#
#   bin/    kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl kube-proxy
#   pause.tar   the pod sandbox image (docker save format), built FROM scratch
set -euo pipefail
here="$(dirname "$0")"
. "$here/lib.sh"

"$here/sources.sh"
version="$(source_version)"
[ -n "$version" ] || die "apt knows no 'kubernetes' source package (see scripts/cluster/sources.sh)"
out="$CLUSTER_CACHE/$version"
if [ -f "$out/complete" ]; then
    echo "$out"
    exit 0
fi
need_root "building the test cluster into $out"
"$here/packages.sh"

work="$CLUSTER_CACHE/build-$version"
log="$CLUSTER_CACHE/build-$version.log"
rm -rf "$work" "$out" "$out.new"
mkdir -p "$work/src" "$work/home"
say "cluster build: Kubernetes $version from source, about 15-20 min on 2 cores (log: $log)"
started=$(date +%s)
# A script of its own, so that its first failing step stops it (set -e holds nowhere left of ||).
"$here/compile.sh" "$work" "$out.new" "$version" >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "cluster build failed (see $log)"; }
mv "$out.new" "$out"
touch "$out/complete"
# Go's build cache and the tree are 5 GB; the binaries and the image are all a start needs.
rm -rf "$work"
mv "$log" "$out/build.log"
say "cluster build: done in $(( $(date +%s) - started ))s, cached in $out"
echo "$out"
