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
