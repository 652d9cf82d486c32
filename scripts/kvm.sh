#!/usr/bin/env bash
# smolvm runs each microVM monitor as its own unprivileged user, so /dev/kvm must
# be open to others before a boot is tried. Nothing to do where there is no KVM.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -e /dev/kvm ] || { say "kvm: no /dev/kvm, smol boots will be skipped"; exit 0; }
if [ "$(stat -c %a /dev/kvm)" != 666 ]; then
    need_root "opening /dev/kvm"
    chmod 0666 /dev/kvm
    say "kvm: /dev/kvm opened (0666)"
fi

# smolvm's monitor runs as an unprivileged uid of its own and loads the engine's libraries from the
# virtualenv inside this checkout: every folder above the checkout must let others pass (search only,
# o+x: nothing in them can be listed or read that could not be before). A checkout under a private
# folder (mktemp -d makes one 0700) would otherwise fail every boot with "libkrunfw not found".
dir="$ROOT"
while [ "$dir" != "/" ]; do
    if [ "$(( 0$(stat -c %a "$dir") & 01 ))" -eq 0 ]; then
        need_root "letting smolvm's monitor reach $dir"
        chmod o+x "$dir"
        say "kvm: $dir made passable for smolvm's monitor (o+x)"
    fi
    dir="$(dirname "$dir")"
done
