"""The proxy's start, tried from inside the agent: its address listens from the bundle's start, a connection made
while mitmproxy is still starting waits and is judged by the policy, and a proxy that cannot start or ends
refuses its clients and ends the bundle.

The bundle is ready once the proxy's socket is bound (by the entry point), its CA written and squid listening,
not once mitmproxy has imported and loaded its addons. To hold mitmproxy in its start for as long as a test
needs, a bottle is claimed from a warm pool whose proxy was stopped (SIGSTOP, as its own user) while it waited
for the claim: the claim, the bundle's readiness and the agent's first requests then all happen before
mitmproxy has read the run's policy.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from bottle_core import session
from bottle_core.manifest import Manifest
from bottle_core.spec import BottleSpec

from .bottles import bottle_cli, docker_plugins, warm_pool, write_manifest

pytestmark = pytest.mark.integration

BOUND = 120.0  # a bound on each wait, not a budget
#: The agent's two requests, at once and in the background, each into a file of its own: what it got (the body,
#: or the proxy's refusal), then the status code (000: no answer), then ``exit`` and curl's status (its error
#: message, if any, beside it in ``.err``).
REQUESTS = " ".join(f"( curl -sS --max-time {{wait}} -w '\\ncode %{{{{http_code}}}}\\n' {url} 2>{out}.err; echo exit $? )"
                    f" > {out} &"
                    for url, out in (("https://allowed.test/early", "/tmp/allowed"),
                                     ("http://denied.test/", "/tmp/denied")))


def parsed(written: str) -> tuple[str, str, str]:
    """What one of :data:`REQUESTS` wrote: (what it got, its status code, ``exit N``)."""
    got, _, tail = written.rpartition("\ncode ")
    code, ended = tail.splitlines()
    return got.strip(), code, ended


def answer(bottle, path: str) -> tuple[str, str, str]:
    """:func:`parsed` of what one of :data:`REQUESTS` wrote into ``path``, once it ended."""
    wait_for(lambda: bottle.exec(["grep", "-q", "^exit ", path]).ok, f"the end of the request into {path}")
    return parsed(bottle.exec(["cat", path]).stdout.decode())


@pytest.fixture
def manifest(tmp_path: Path, outbound_env, internet_egress, monkeypatch) -> Path:
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    return write_manifest(tmp_path, {
        "bottles": {"web": {"egress": {**internet_egress, "allow": ["allowed.test"]}}},
        "agents": {"surfer": {"bottle": "web"}},
    })


def bundle_log(slug_or_bottle) -> str:
    from bottle_core.plan import state_root

    slug = getattr(getattr(slug_or_bottle, "plan", None), "slug", slug_or_bottle)
    return (state_root() / slug / "logs" / "bundle.log").read_text()


def in_bundle(container, command: str) -> str:
    """``command`` run by ``sh`` in the bundle as the proxy's user (who may signal the proxy, as it is)."""
    code, output = container.exec_run(["sh", "-c", command], user="bundle")
    assert code == 0, output
    return output.decode()


def mitmdump_pid(container) -> str:
    found = in_bundle(container, "for p in /proc/[0-9]*; do grep -q 'bin/mitmdum[p]' $p/cmdline 2>/dev/null "
                                 "&& echo ${p#/proc/}; done; true").split()
    assert len(found) == 1, found
    return found[0]


def connections_to_the_proxy(bottle) -> int:
    """The agent's TCP connections to the proxy's port that the bundle's kernel has taken (ESTABLISHED)."""
    port = f"{bottle.plan.proxy.port:04X}"
    table = bottle.exec(["cat", "/proc/net/tcp"]).stdout.decode().splitlines()[1:]
    return sum(1 for fields in map(str.split, table) if fields[2].endswith(f":{port}") and fields[3] == "01")


@contextmanager
def claimed_with_its_proxy_stopped(manifest: Path, docker_client, before_claim: str = "true"):
    """A bottle of ``surfer`` claimed from a warm pool whose proxy is stopped (``before_claim`` run in its bundle
    first): yields the bottle and a function that lets the proxy go on."""
    with warm_pool(manifest, "surfer", cwd=manifest.parent) as pooled:
        container = docker_client.containers.get(f"bottle-{pooled[0]}-bundle")
        in_bundle(container, before_claim)
        pid = mitmdump_pid(container)
        in_bundle(container, f"kill -STOP {pid}")
        spec = BottleSpec(manifest=Manifest.load(manifest), agent="surfer", copy_cwd=False, cwd=manifest.parent)
        plugins = docker_plugins()
        plan = session.prepare(plugins, spec)
        try:
            with session.running(plugins, plan) as bottle:
                assert bottle.plan.slug == pooled[0], "the run did not claim the pooled bottle"
                yield bottle, lambda: in_bundle(container, f"kill -CONT {pid}")
        finally:
            try:
                in_bundle(container, f"kill -CONT {pid}")
            except Exception:  # noqa: BLE001 - the bundle is gone already
                pass


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.2)


def test_requests_made_as_the_command_starts_are_judged_by_the_proxy(manifest, origin):
    """The first thing `bottle exec` runs: one request to an allowed host, one to a host off the list, at once."""
    run = bottle_cli("exec", "-m", str(manifest), "surfer", "--", "sh", "-c",
                     REQUESTS.format(wait=60) + " wait; cat /tmp/allowed; echo =====; cat /tmp/denied")
    assert run.returncode == 0, run.stderr
    allowed, denied = map(parsed, run.stdout.decode().split("=====\n"))
    assert allowed == ("hello from allowed.test", "200", "exit 0")
    body, code, ended = denied
    assert (code, ended) == ("403", "exit 0") and "allow-list" in body, denied
    assert [r["path"] for r in origin.requests()] == ["/early"], "only the allowed request reached the origin"


def test_a_connection_made_while_mitmproxy_starts_waits_and_is_judged(manifest, origin, docker_client):
    with claimed_with_its_proxy_stopped(manifest, docker_client) as (bottle, resume):
        # Ready, with mitmproxy stopped before it read the run's policy: the agent's requests go out now.
        bottle.exec(["setsid", "sh", "-c", REQUESTS.format(wait=BOUND)])  # they run on in the bottle
        wait_for(lambda: connections_to_the_proxy(bottle) >= 2, "both connections taken by the bundle's kernel")
        assert bottle.exec(["sh", "-c", "! test -s /tmp/allowed -o -s /tmp/allowed.err -o -s /tmp/denied -o -s /tmp/denied.err"]).ok, \
            "answered (or refused) while mitmproxy was stopped"
        assert origin.requests() == []
        resume()
        allowed, denied = answer(bottle, "/tmp/allowed"), answer(bottle, "/tmp/denied")
    assert allowed == ("hello from allowed.test", "200", "exit 0")
    body, code, ended = denied
    assert (code, ended) == ("403", "exit 0") and "allow-list" in body, denied
    assert [r["path"] for r in origin.requests()] == ["/early"], "only the allowed request reached the origin"


def test_a_proxy_whose_policy_cannot_load_resets_the_waiting_connections_and_ends_the_bundle(manifest, origin,
                                                                                            docker_client):
    """mitmproxy runs on when an addon fails: the proxy then never serves, and its end ends the bundle."""
    # The file the policy writes once in force, taken by a folder: the policy cannot say it is in force.
    with claimed_with_its_proxy_stopped(manifest, docker_client,
                                        "mkdir /var/lib/bottle/proxy-policy-loaded") as (bottle, resume):
        bottle.exec(["setsid", "sh", "-c", REQUESTS.format(wait=BOUND)])
        wait_for(lambda: connections_to_the_proxy(bottle) >= 2, "both connections taken by the bundle's kernel")
        resume()
        allowed, denied = answer(bottle, "/tmp/allowed"), answer(bottle, "/tmp/denied")
        after = bottle.exec(["curl", "-sS", "--max-time", "20", "https://allowed.test/later"])
    assert allowed[1] == denied[1] == "000", ("neither waiting connection was served", allowed, denied)
    assert after.returncode != 0, "nothing answers on the proxy's port once it ended"
    assert origin.requests() == []
    log = bundle_log(bottle)
    assert "proxy-policy-loaded" in log, log[-2000:]  # why (mitmproxy's error, or the proxy's own word)
    assert "bottle-bundle: proxy exited (1); stopping" in log


def test_a_proxy_killed_while_serving_ends_the_bundle_and_its_port_answers_no_more(manifest, origin, docker_client):
    from .bottles import bottle_of

    with bottle_of(manifest, "surfer") as bottle:
        first = bottle.exec(["curl", "-sS", "--max-time", "60", "https://allowed.test/before"])
        assert first.stdout.strip() == b"hello from allowed.test", first.stderr
        container = docker_client.containers.get(bottle.bundle_id)
        in_bundle(container, f"kill -KILL {mitmdump_pid(container)}")
        after = bottle.exec(["curl", "-sS", "--max-time", "20", "https://allowed.test/after"])
    assert after.returncode != 0, "nothing answers on the proxy's port once it ended"
    assert [r["path"] for r in origin.requests()] == ["/before"]
    assert "bottle-bundle: proxy exited (-9); stopping" in bundle_log(bottle)
