"""The bundle's daemons, in one table: who each runs as, what it runs, where it listens, what it may reach.

Read by the entry point (which starts them and waits for them to listen), by
the packet filter (which lets each daemon's user open only the connections
listed here) and by the host side of the contract (whose listening ports
are the bottle-side addresses here). A new daemon is one row here and its
own module; nothing else has to agree with it.

Pure data and small functions of the bundle's configuration (the JSON of
``bottle_core.bundle.contract.bundle_config``): importable on the host and
in the image alike.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import egress_stage, proxy_start

#: The image's users the daemons run as (the Dockerfile makes them).
PROXY_USER, EGRESS_USER, GATE_USER = "bundle", "egress", "gate"
#: Written by the proxy's policy addon once it is loaded: mitmproxy runs on without an addon that failed to
#: load, so the proxy serves its socket only once this file exists (``proxy_serve``: a broken policy fails closed).
POLICY_LOADED = Path("/var/lib/bottle/proxy-policy-loaded")
#: The egress stage's configuration file, written by the entry point as root before it starts.
EGRESS_DIR = Path("/run/bottle/egress")
SQUID_CONF = EGRESS_DIR / "squid.conf"

Config = dict
Address = tuple[str, int]
#: The ways a daemon says it listens (:attr:`Daemon.says`).
PIPE, SD_NOTIFY = "pipe", "sd_notify"


def module(name: str) -> list[str]:
    """``python3 -m`` of a module of this package."""
    return [sys.executable or "python3", "-m", f"{__package__}.{name}"]


def served(name: str) -> list[str]:
    """A Python daemon of this package, run so that it says when it listens (see ``readiness``); its full
    module name in the command line says to ``ps`` which daemon it is."""
    return [*module("readiness"), f"{__package__}.{name}"]


def _always(config: Config) -> bool:
    return True


def _nothing(config: Config) -> list[Address]:
    return []


@dataclass(frozen=True)
class Daemon:
    """One row of the table."""

    name: str
    #: The account it runs as: a user of the image, or the git gate's upstream owner (``run_as``) as (uid, gid).
    user: Callable[[Config], str | tuple[int, int]]
    argv: Callable[[Config], list[str]]
    #: Where it accepts connections once up (readiness is its socket listening there).
    address: Callable[[Config], Address]
    enabled: Callable[[Config], bool] = _always
    #: Its port answers the agent on the bundle's bottle-side address (the contract's listening ports).
    bottle_side: bool = False
    #: Addresses inside the bundle its user may connect to (loopback, or the bottle-side address).
    reaches: Callable[[Config], list[Address]] = _nothing
    #: The one daemon that connects out (to the resolvers, and to what the egress policy allows).
    connects_out: bool = False
    #: Ready only once this file exists too.
    ready_file: Path | None = None
    #: How it says it listens: on its readiness pipe (:data:`PIPE`, see ``readiness``), or by systemd's
    #: notify protocol (:data:`SD_NOTIFY`: squid's own ``READY=1``; its port in the socket table counts too).
    says: str = PIPE
    #: In a pooled bundle, started before the claim (it reads nothing of the run's until the claim's go).
    ahead: bool = False
    #: The entry point listens on its address from the start and hands the listening socket over
    #: (``readiness.LISTEN_FD``): a client that connects before the daemon accepts waits in the kernel's backlog,
    #: so the address listens as soon as the bundle starts. Started at once, such a daemon is told when the whole
    #: bundle is ready (``readiness.SERVE_FD``) and accepts nothing before: what it relays to listens by then.
    handed_socket: bool = False
    #: Started only when its first client connects (its socket handed over then, ``readiness.server``), so it
    #: costs nothing until used.
    on_first_connection: bool = False

    def __post_init__(self) -> None:
        if self.on_first_connection and not self.handed_socket:
            raise ValueError(f"daemon {self.name}: started on first connection, so its socket must be handed over")


def _gate_user(config: Config) -> str | tuple[int, int]:
    run_as = config["git_gate"].get("run_as")
    return (int(run_as[0]), int(run_as[1])) if run_as else GATE_USER


def _egress_reaches(config: Config) -> list[Address]:
    scripted = config.get("scripted_model")  # a rehearsal: the proxy's model requests, re-aimed, pass through here
    return [("127.0.0.1", int(scripted["port"]))] if scripted else []


def _gate_reaches(config: Config) -> list[Address]:
    # An https upstream is pushed to through the proxy, which judges the gate like any client.
    https = any(r.get("kind") == "https" for r in config["git_gate"].get("remotes", {}).values())
    return [(config["proxy"]["listen_host"], int(config["proxy"]["port"]))] if https else []


def _model_script_argv(config: Config) -> list[str]:
    scripted = config["scripted_model"]
    return [*served("model_server"), "--script", scripted["script"], "--listen", "127.0.0.1",
            "--port", str(scripted["port"])]


TABLE: tuple[Daemon, ...] = (
    # The proxy first: it makes the CA, which the launch waits for (and which is all its readiness is: its
    # socket is the entry point's, listening from the start; mitmproxy's own start is not waited for).
    Daemon("proxy", user=lambda c: PROXY_USER, argv=lambda c: module("proxy_start"),
           address=lambda c: (c["proxy"]["listen_host"], int(c["proxy"]["port"])), bottle_side=True,
           reaches=lambda c: [("127.0.0.1", int(c["egress"]["port"]))], ready_file=proxy_start.CA_CERT,
           ahead=True, handed_socket=True),
    Daemon("egress", user=lambda c: EGRESS_USER,
           argv=lambda c: egress_stage.argv(SQUID_CONF),
           address=lambda c: ("127.0.0.1", int(c["egress"]["port"])),
           reaches=_egress_reaches, connects_out=True, says=SD_NOTIFY),
    Daemon("git gate", user=_gate_user, argv=lambda c: served("git_gate"),
           address=lambda c: (c["proxy"]["listen_host"], int(c["git_gate"]["port"])), bottle_side=True,
           reaches=_gate_reaches, handed_socket=True, on_first_connection=True),
    Daemon("supervisor", user=lambda c: PROXY_USER, argv=lambda c: served("supervisor"),
           address=lambda c: (c["supervise"]["listen_host"], int(c["supervise"]["port"])), bottle_side=True,
           enabled=lambda c: (c.get("supervise") or {}).get("mode", "off") != "off", handed_socket=True,
           on_first_connection=True),
    Daemon("model-script", user=lambda c: PROXY_USER, argv=_model_script_argv,
           address=lambda c: ("127.0.0.1", int(c["scripted_model"]["port"])),
           enabled=lambda c: bool(c.get("scripted_model"))),
)


def running(config: Config) -> list[Daemon]:
    """The rows this bundle runs."""
    return [daemon for daemon in TABLE if daemon.enabled(config)]


def bottle_side_ports(config: Config) -> list[int]:
    """The ports that answer the agent on the bundle's bottle-side address; every other port is closed."""
    return [daemon.address(config)[1] for daemon in running(config) if daemon.bottle_side]
