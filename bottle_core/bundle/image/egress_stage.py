"""The egress stage: squid on loopback, the only process in the bundle that connects out.

The proxy (stage 1) judges each request by name, port, Host and SNI, then
hands it to this stage, which resolves the name and connects. Squid's
``dst`` ACLs judge the *resolved* address: loopback, link-local, RFC 1918,
CGNAT, ULA, multicast, the host's own addresses and the engine's networks are
refused even for an allowed name, unless the bottle opted a CIDR in
(``egress.allow_private``); the ranges come from the plan
(``bottle_core.addressing.PRIVATE_NETWORKS`` plus the engine's networks). The
host's own addresses are refused always. The
packet filter (``netfilter.py``) enforces the same ranges underneath, so a
bug here or in the proxy does not open the host.

Before a tunnel or a plain-HTTP request is relayed, the proxy asks this stage
whether it would connect (a *preflight*: a CONNECT carrying
:data:`PREFLIGHT_HEADER`, which squid always answers itself, never by
connecting), so a refusal reaches the agent as a clear 403 naming the rule.

In a rehearsal (``--model-script``) the proxy re-aims the model host's
requests at the scripted model on the bundle's loopback; they pass this stage
too, which lets the proxy reach exactly that ``127.0.0.1:<port>`` and no other
loopback port (never for a preflight question).
"""

from __future__ import annotations

import ipaddress
import shutil
from pathlib import Path

#: Header of the proxy's question "would you connect to this CONNECT target?" (squid answers it itself).
PREFLIGHT_HEADER = "X-Bottle-Preflight"
#: The ``X-Squid-Error`` codes of the preflight's two answers.
REFUSED, WOULD_CONNECT = "ERR_BOTTLE_PRIVATE", "ERR_BOTTLE_WOULD_CONNECT"
SQUID_TEMPLATES = Path("/usr/share/squid/errors/templates")
#: The catalogue of error details beside squid's pages (not a page itself).
DETAILS = "error-details.txt"
#: squid's bound on a request's head: above the proxy's (64 KiB, ``head_limit``), so the proxy's is the one a client
#: meets, with its rule named; a head the proxy relays may come out a little longer than it came in.
HEAD_MAX_KB = 96
#: The name squid gives itself in what it makes (never the container's host name).
VISIBLE_HOSTNAME = "bottle-egress"


def never_allowed(egress: dict) -> list[str]:
    """Networks refused even when opted in: the host's own addresses."""
    return [str(ipaddress.ip_network(a)) for a in egress.get("host_addresses", [])]


def opted_in(egress: dict) -> list[str]:
    """The private CIDRs the bottle opted in (for servers on the bottle's own machine)."""
    return [str(ipaddress.ip_network(c)) for c in egress.get("allow_private", [])]


def refused(egress: dict) -> list[str]:
    """Networks refused unless opted in: the private ranges and the engine's networks (from the plan).

    Collapsed, so a network inside another is named once (squid warns about, and drops, overlapping entries).
    """
    networks = [ipaddress.ip_network(n) for n in egress["refused_networks"]]
    return [str(n) for version in (4, 6) for n in ipaddress.collapse_addresses(
        [n for n in networks if n.version == version])]


def squid_config(egress: dict, error_dir: Path, script_port: int | None = None) -> str:
    """squid.conf for the egress stage: relay for the proxy on loopback only, by resolved address.

    ``script_port``: in a rehearsal, the scripted model's port on loopback,
    the one loopback address the proxy's re-aimed model requests may reach.
    """
    lines = [
        f"http_port 127.0.0.1:{int(egress['port'])}",
        # Nothing on disk: no pid file, no cache, no logs (decisions are the proxy's records).
        "pid_filename none", "cache deny all", "cache_mem 0 MB", "memory_pools off", "coredump_dir none",
        "cache_log stdio:/dev/null", "access_log none", "pinger_enable off", "shutdown_lifetime 0 seconds",
        # Nothing about the bundle reaches the origin or the agent.
        "via off", "forwarded_for delete", "httpd_suppress_version_string on",
        # Past the proxy's own bound on a request's head (head_limit.MAX_HEAD), which answers first; still bounded
        # here. A reply's head squid reads up to 64 KiB, its own bound, and answers a longer one with a 502.
        f"request_header_max_size {HEAD_MAX_KB} KB",
        "reply_header_access X-Cache deny all", "reply_header_access X-Cache-Lookup deny all",
        f"error_directory {error_dir}",
        # Its own name would be the container's: the pages and headers it makes itself name no host detail.
        f"visible_hostname {VISIBLE_HOSTNAME}",
        "acl proxy_stage src 127.0.0.1/32",
        f"acl preflight req_header {PREFLIGHT_HEADER} .",
        f"acl refused_private dst {' '.join(refused(egress))}",
    ]
    if script_port is not None:
        lines += ["acl model_script dst 127.0.0.1/32", f"acl model_script_port port {int(script_port)}",
                  "http_access allow proxy_stage model_script model_script_port !preflight"]
    if never_allowed(egress):
        lines += [f"acl refused_always dst {' '.join(never_allowed(egress))}", "http_access deny refused_always",
                  f"deny_info {REFUSED} refused_always"]
    if opted_in(egress):
        lines.append(f"acl opted_in dst {' '.join(opted_in(egress))}")
    lines += [
        "http_access deny !proxy_stage",
        # No request the stage would answer itself in the origin's place (the proxy takes these out first):
        # TRACE echoes the request, and OPTIONS or TRACE with Max-Forwards 0 is a proxy's to answer.
        "acl echoes method TRACE", "http_access deny echoes",
        "acl hop_answered req_header Max-Forwards .", "http_access deny hop_answered",
        # Its cache manager (/squid-internal-mgr/, cache_object://) serves no one: it lists what the bundle resolved.
        "http_access deny manager",
        # dst matches when any address of the name is in the list: one private address refuses the name.
        "http_access deny !opted_in refused_private" if opted_in(egress) else "http_access deny refused_private",
        "http_access deny preflight",
        "http_access allow proxy_stage",
        f"deny_info {REFUSED} refused_private",
        f"deny_info {WOULD_CONNECT} preflight",
    ]
    return "\n".join(lines) + "\n"


def write_error_pages(error_dir: Path) -> None:
    """squid's error pages, each one fixed sentence naming its code, plus the two preflight answers.

    squid's own pages quote the request and name its host (the bundle's
    container) and the server's address; a page it makes for a plain-HTTP
    request reaches the agent as the answer, so none of them says more than
    which error it was. The one file that is not a page (:data:`DETAILS`) is
    kept as shipped.
    """
    error_dir.mkdir(parents=True, exist_ok=True)
    if SQUID_TEMPLATES.is_dir():
        for template in SQUID_TEMPLATES.iterdir():
            if template.name == DETAILS:
                shutil.copyfile(template, error_dir / template.name)
            else:
                (error_dir / template.name).write_text(
                    f"bottle: the egress stage did not relay this request ({template.name})\n")
    (error_dir / REFUSED).write_text("bottle: %H resolves to an address this bottle may not reach\n")
    (error_dir / WOULD_CONNECT).write_text("bottle: %H may be reached\n")


def argv(config_file: Path) -> list[str]:
    """squid in the foreground, errors on stderr."""
    return [shutil.which("squid") or "/usr/sbin/squid", "-N", "-d", "1", "-f", str(config_file)]
