#!/usr/bin/env bash
# Make apt able to fetch Debian source packages: add deb-src entries derived from this
# machine's own deb entries for its release (same URIs, suites, components, keys), then update.
# Idempotent: does nothing when apt already knows the kubernetes source package.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LIST=/etc/apt/sources.list.d/bottle-cluster-src.sources

if [ -n "$(source_version)" ]; then
    exit 0
fi
need_root "adding deb-src entries to apt"
. /etc/os-release
codename="${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"

# One deb822 stanza per deb entry whose suite is this release (bookworm, bookworm-updates, ...):
# third-party repositories rarely publish sources, and an entry without them fails apt-get update.
python3 - "$codename" >"$LIST.new" <<'PY'
import glob, re, sys
codename = sys.argv[1]
release = re.compile(rf"^{re.escape(codename)}(-[a-z]+)?$")
out = []
def emit(uris, suites, components, signed_by):
    suites = [s for s in suites if release.match(s)]
    if not suites or not components:
        return
    stanza = ["Types: deb-src", "URIs: " + " ".join(uris), "Suites: " + " ".join(suites),
              "Components: " + " ".join(components)]
    if signed_by:
        stanza.append("Signed-By: " + signed_by)
    out.append("\n".join(stanza))
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        line = line.split("#", 1)[0].strip()
        m = re.match(r"^deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$", line)
        if not m:
            continue
        signed = re.search(r"signed-by=(\S+?)[\s\]]", (m.group(1) or "") + " ")
        emit([m.group(2)], [m.group(3)], m.group(4).split(), signed.group(1) if signed else "")
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    if path.endswith("bottle-cluster-src.sources"):
        continue
    for block in re.split(r"\n\s*\n", open(path).read()):
        fields = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
            continue
        emit(fields.get("uris", "").split(), fields.get("suites", "").split(),
             fields.get("components", "").split(), fields.get("signed-by", ""))
print("\n\n".join(out))
PY
[ -s "$LIST.new" ] || { rm -f "$LIST.new"; die "no deb entry for $codename found in /etc/apt to derive deb-src from"; }
mv "$LIST.new" "$LIST"
say "cluster sources: added $LIST"
apt-get -o DPkg::Lock::Timeout=600 update </dev/null
[ -n "$(source_version)" ] || die "apt knows no 'kubernetes' source package after adding $LIST"
