#!/usr/bin/env bash
# The build proper, run by build.sh: compile.sh WORK OUT VERSION. Fetches version VERSION of the
# `kubernetes` source package into WORK, builds the binaries and the pause image, and puts them
# in OUT (bin/, pause.tar).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage="usage: compile.sh WORK OUT VERSION"
work="${1:?$usage}"
out="${2:?$usage}"
version="${3:?$usage}"
cd "$work"
apt-get source --download-only "kubernetes=$version" </dev/null
dsc="$(ls kubernetes_*.dsc)"
# apt checked the files against the archive's signed index; check the tarball against the .dsc too.
orig="$(ls kubernetes_*.orig.tar.*)"
want="$(awk -v f="$orig" '/^Checksums-Sha256:/ {in_sums=1; next} /^[^ ]/ {in_sums=0} in_sums && $3 == f {print $1}' "$dsc")"
[ -n "$want" ] || die "no sha256 for $orig in $dsc"
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
mkdir -p "$out/bin"
for binary in "${KUBE_BINARIES[@]}"; do
    cp "_output/local/bin/linux/amd64/$binary" "$out/bin/"
done
# The pod sandbox image: Kubernetes' own pause, static, alone in an image.
pause_src=build/pause/linux/pause.c
[ -f "$pause_src" ] || pause_src=build/pause/pause.c   # its place before 1.19
mkdir -p "$work/pause"
gcc -Os -Wall -Werror -static -DVERSION=v1.20.2-bottle -o "$work/pause/pause" "$pause_src"
strip "$work/pause/pause"
printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$work/pause/Dockerfile"
docker build -q -t "$PAUSE_IMAGE" "$work/pause"
docker save -o "$out/pause.tar" "$PAUSE_IMAGE"
docker rmi "$PAUSE_IMAGE" >/dev/null
