# Shared by the set-up scripts: where the project is, where it keeps its own state.
# Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Project-local and git-ignored: engine log and pid file, scratch space.
CACHE="$ROOT/.cache"
mkdir -p "$CACHE"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || die "$1 needs root (run as root, or do it by hand)"; }
