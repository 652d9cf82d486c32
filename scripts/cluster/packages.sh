#!/usr/bin/env bash
# Install the Debian packages the test cluster needs to build and run, only those missing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# Each package by a file it installs, so a present package costs no apt call.
declare -A probe=(
    [golang-go]=/usr/bin/go
    [golang-github-modern-go-reflect2-dev]=/usr/share/gocode/src/github.com/modern-go/reflect2/reflect2.go
    [etcd-server]=/usr/bin/etcd
    [containerd]=/usr/bin/containerd
    [runc]=/usr/sbin/runc
    [containernetworking-plugins]=/usr/lib/cni/bridge
    [iptables]=/usr/sbin/iptables
    [rsync]=/usr/bin/rsync
    [make]=/usr/bin/make
    [gcc]=/usr/bin/gcc
    [libc6-dev]=/usr/lib/x86_64-linux-gnu/libc.a
    [openssl]=/usr/bin/openssl
    [curl]=/usr/bin/curl
)
missing=()
for package in "${!probe[@]}"; do
    [ -e "${probe[$package]}" ] || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
    say "cluster packages: all present"
    exit 0
fi
need_root "installing ${missing[*]}"
say "cluster packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update </dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" </dev/null
