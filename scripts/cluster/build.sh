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
rm -rf "$work" "$out"
mkdir -p "$work/src" "$work/home"
say "cluster build: Kubernetes $version from source, about 15-20 min on 2 cores (log: $log)"
started=$(date +%s)
{
    cd "$work"
    apt-get source --download-only kubernetes </dev/null
    dsc="$(ls kubernetes_*.dsc)"
    # apt checked the files against the archive's signed index; check the tarball against the .dsc too.
    orig="$(ls kubernetes_*.orig.tar.*)"
    want="$(awk -v f="$orig" '/^Checksums-Sha256:/ {in_sums=1; next} /^[^ ]/ {in_sums=0} in_sums && $3 == f {print $1}' "$dsc")"
    [ -n "$want" ] || { echo "no sha256 for $orig in $dsc"; exit 1; }
    echo "$want  $orig" | sha256sum -c -
    # The orig tarball is the upstream tree with vendor/ and staging/: it builds offline.
    tar -xf "$orig" -C src --strip-components=1
    cd src
    # The vendored reflect2 1.0.1 breaks at run time with Go >= 1.18: use Debian's 1.0.2.
    reflect2=vendor/github.com/modern-go/reflect2
    debian_reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
    find "$reflect2" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
    find "$debian_reflect2" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' \
        -exec cp {} "$reflect2/" \;
    env -i PATH=/usr/lib/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME="$work/home" GOCACHE="$work/home/go-build" GOPATH="$work/home/go" \
        GOPROXY=off GOFLAGS=-mod=vendor GO111MODULE=on \
        KUBE_BUILD_PLATFORMS=linux/amd64 KUBE_GIT_VERSION=v1.20.2 KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20 \
        KUBE_GIT_TREE_STATE=clean \
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet cmd/kubectl cmd/kube-proxy"
    mkdir -p "$out.new/bin"
    for binary in "${KUBE_BINARIES[@]}"; do
        cp "_output/local/bin/linux/amd64/$binary" "$out.new/bin/"
    done
    # The pod sandbox image: Kubernetes' own pause, static, alone in an image.
    pause_src="$(ls build/pause/linux/pause.c build/pause/pause.c 2>/dev/null | head -n 1)"
    mkdir -p "$work/pause"
    gcc -Os -Wall -Werror -static -DVERSION=v1.20.2-bottle -o "$work/pause/pause" "$pause_src"
    strip "$work/pause/pause"
    printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$work/pause/Dockerfile"
    docker build -q -t "$PAUSE_IMAGE" "$work/pause"
    docker save -o "$out.new/pause.tar" "$PAUSE_IMAGE"
    docker rmi "$PAUSE_IMAGE" >/dev/null
} >"$log" 2>&1 || { tail -n 30 "$log" >&2; die "cluster build failed (see $log)"; }
mv "$out.new" "$out"
touch "$out/complete"
# Go's build cache and the tree are 5 GB; the binaries and the image are all a start needs.
rm -rf "$work"
mv "$log" "$out/build.log"
say "cluster build: done in $(( $(date +%s) - started ))s, cached in $out"
echo "$out"
