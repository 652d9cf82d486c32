"""io_uring refused to the agent's commands, as the docker backend's seccomp profile refuses it.

A pod's seccomp profile is its runtime's default (``RuntimeDefault``, which
the agent pod has) or a file on every node (``Localhost``), which a backend
that only talks to the API cannot put there. The default of the runtime this
was tested on (containerd 1.6) still allows io_uring, whose requests run in
kernel workers no syscall filter sees. So every command run as the agent
(:meth:`K8sBottle.exec` and ``run``; the tar of a file copy is core's own)
starts behind a filter of its own, stacked on the runtime's: a few lines of
Python load one through libseccomp (from the agent image) that answers
``io_uring_setup``, ``io_uring_enter`` and ``io_uring_register`` with
``ENOSYS``, as a kernel without io_uring would (runtimes that probe for it,
libuv in Node, fall back to ordinary calls), then exec the command. Every
process of the agent descends from such a command, and a loaded filter stays
for all of them. Where the filter cannot be loaded the command does not run.

The dynamic loader's variables (``LD_PRELOAD`` and the rest, which a
manifest's ``env`` may set) would load code into the launcher ahead of its
filter: they travel set aside (:func:`set_aside`) and the launcher puts them
back for the command alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: The calls refused, as the docker backend's profile refuses them (``bottle_docker.seccomp.DENIED``).
DENIED = ("io_uring_setup", "io_uring_enter", "io_uring_register")

#: Exit status when the filter cannot be loaded (the command did not run).
REFUSED = 126

#: The prefix of the dynamic loader's variables, and what they travel under until the filter is loaded.
LOADER_PREFIX = "LD_"
ASIDE = "BOTTLE_ASIDE_"

#: Run with ``python3 -I`` (no ``PYTHON*`` variable, no user or working folder on the path: nothing the agent
#: wrote is imported). argv: the calls to refuse (comma-separated), then the command.
LAUNCHER = r"""
import ctypes, ctypes.util, errno, os, sys
def refuse(why):
    sys.stderr.write(f"bottle: {why}: the agent's command does not run without its seccomp filter\n")
    sys.exit(126)
found = ctypes.util.find_library("seccomp")
if not found:
    refuse("no libseccomp in the agent image")
lib = ctypes.CDLL(found)
lib.seccomp_init.restype, lib.seccomp_init.argtypes = ctypes.c_void_p, [ctypes.c_uint32]
lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
lib.seccomp_load.argtypes = [ctypes.c_void_p]
lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
context = lib.seccomp_init(0x7FFF0000)  # SCMP_ACT_ALLOW: the runtime's own filter still judges every call
if not context:
    refuse("seccomp_init failed")
for name in sys.argv[1].split(","):
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number < 0 or lib.seccomp_rule_add(context, 0x00050000 | errno.ENOSYS, number, 0) != 0:  # SCMP_ACT_ERRNO
        refuse(f"cannot refuse {name}")
if lib.seccomp_load(context) != 0:
    refuse("seccomp_load failed")
for key in [key for key in os.environ if key.startswith("BOTTLE_ASIDE_")]:
    os.environ[key[len("BOTTLE_ASIDE_"):]] = os.environ.pop(key)
try:
    os.execvp(sys.argv[2], sys.argv[2:])
except OSError as exc:
    sys.stderr.write(f"{sys.argv[2]}: {exc.strerror}\n")
    sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)
"""


def guarded(argv: Sequence[str]) -> list[str]:
    """``argv`` run behind the filter that refuses :data:`DENIED`."""
    return ["python3", "-I", "-c", LAUNCHER, ",".join(DENIED), *argv]


def set_aside(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the dynamic loader's variables renamed, so only the command behind the filter gets them."""
    return {(ASIDE + key if key.startswith(LOADER_PREFIX) else key): value for key, value in env.items()}
