"""The egress stage's opt-in field, squid configuration and packet filter rules, checked as text.

The image's modules are loaded from the bundle's build context, as the bundle runs them.
"""

from __future__ import annotations

import ipaddress

import pytest

from bottle_core.addressing import PRIVATE_NETWORKS
from bottle_core.errors import ManifestError
from bottle_core.manifest import Manifest
from bottle_core.plan import EgressPlan

from bottle_core.bundle.image import egress_stage
from bottle_core.bundle.image import netfilter

PROXY_UID, EGRESS_UID, GATE_UID = 100, 101, 1000
ACCOUNTS = {"bundle": (PROXY_UID, PROXY_UID), "egress": (EGRESS_UID, EGRESS_UID), "gate": (GATE_UID, GATE_UID)}


def rules_of(config: dict, resolvers: list[str] = ()) -> str:
    """The packet filter's IPv4 rules, with the image's users at fixed uids."""
    return netfilter.ipv4_rules(config, list(resolvers), account=lambda user: user if isinstance(user, tuple)
                                else ACCOUNTS[user])


def egress(**fields) -> dict:
    return EgressPlan(allow=["a.test"], **fields).model_dump()


def config(remotes: dict | None = None, scripted_port: int | None = None, run_as: list | None = None,
           **fields) -> dict:
    return {"egress": egress(**fields), "proxy": {"listen_host": "10.213.7.2", "port": 8080},
            "git_gate": {"port": 9418, "remotes": remotes or {}, "run_as": run_as},
            "scripted_model": {"port": scripted_port, "script": "/s.json"} if scripted_port else None}


@pytest.mark.parametrize("value, words", [
    ("172.30.0.1/16", "has host bits set"),
    ("not-a-cidr", "is not a CIDR"),
    ("fd00::/8", "IPv6 is off"),
    ("127.0.0.0/8", "cannot be opted in"),
    ("0.0.0.0/0", "cannot be opted in"),
    ("8.8.8.0/24", "not inside a private range"),
])
def test_allow_private_refuses_what_it_cannot_mean(value, words):
    data = {"bottles": {"dev": {"egress": {"allow_private": ["10.1.0.0/16", value]}}}, "agents": {}}
    with pytest.raises(ManifestError) as caught:
        Manifest.from_json_obj(data, source="bottle.json")
    assert caught.value.field == "bottles.dev.egress.allow_private[1]"
    assert words in str(caught.value)


def test_allow_private_keeps_private_ranges():
    data = {"bottles": {"dev": {"egress": {"allow_private": ["172.30.0.0/16", "100.64.1.0/24"]}}}, "agents": {}}
    manifest = Manifest.from_json_obj(data, source="bottle.json")
    assert manifest.bottles["dev"].egress.allow_private == ["172.30.0.0/16", "100.64.1.0/24"]


def test_the_refused_ranges_cover_every_private_kind():
    refused = [ipaddress.ip_network(n) for n in PRIVATE_NETWORKS]
    for address in ("127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "224.0.0.1", "0.0.0.0", "::1", "fd12::1", "fe80::1", "ff02::1"):
        assert any(ipaddress.ip_address(address) in n for n in refused), address
    assert not any(ipaddress.ip_address("93.184.216.34") in n for n in refused)


def test_squid_refuses_host_addresses_first_then_private_ranges_unless_opted_in(tmp_path):
    text = egress_stage.squid_config(egress(allow_private=["172.30.0.0/16"], host_addresses=["172.30.0.1"]), tmp_path)
    lines = text.splitlines()
    assert "http_port 127.0.0.1:3128" in lines
    access = [line for line in lines if line.startswith("http_access")]
    assert access == ["http_access deny refused_always", "http_access deny !proxy_stage",
                      "http_access deny echoes", "http_access deny hop_answered", "http_access deny manager", "http_access deny !opted_in refused_private", "http_access deny preflight",
                      "http_access allow proxy_stage"]
    assert "acl opted_in dst 172.30.0.0/16" in lines and "acl refused_always dst 172.30.0.1/32" in lines
    assert "10.0.0.0/8" in next(line for line in lines if line.startswith("acl refused_private"))
    assert {"via off", "forwarded_for delete"} <= set(lines)


def test_squid_without_opt_in_refuses_every_private_range(tmp_path):
    lines = egress_stage.squid_config(egress(), tmp_path).splitlines()
    assert "http_access deny refused_private" in lines and not any("opted_in" in line for line in lines)


def test_packet_filter_lets_only_the_egress_user_out_and_never_inward():
    rules = rules_of(config(allow_private=["172.30.0.0/16"], host_addresses=["172.30.0.1"]),
                     ["127.0.0.11"]).splitlines()
    assert rules[1:4] == [":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]"]
    output = [r for r in rules if r.startswith("-A OUTPUT")]
    refuse = "REJECT --reject-with icmp-admin-prohibited"
    everyone_else = output.index(f"-A OUTPUT -m owner ! --uid-owner {EGRESS_UID} -j {refuse}")
    # Before that line: answers, the proxy to the egress stage, the egress user's DNS; nothing else.
    assert output[:everyone_else] == [
        "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        f"-A OUTPUT -o lo -d 127.0.0.1/32 -p tcp --dport 3128 -m owner --uid-owner {PROXY_UID} -j ACCEPT",
        *(f"-A OUTPUT -d 127.0.0.11/32 -p {p} -m conntrack --ctorigdstport 53 -m owner --uid-owner {EGRESS_UID} -j ACCEPT"
          for p in ("udp", "tcp"))]
    after = output[everyone_else + 1:]
    assert after[0] == f"-A OUTPUT -o lo -j {refuse}"
    # The host's address before the opt-in that contains it, the opt-in before the private ranges.
    host = after.index(f"-A OUTPUT -d 172.30.0.1/32 -j {refuse}")
    assert host < after.index("-A OUTPUT -d 172.30.0.0/16 -j ACCEPT") < after.index(f"-A OUTPUT -d 172.16.0.0/12 -j {refuse}")
    assert after[-1] == "-A OUTPUT -j ACCEPT" and not any(":" in r.split()[3] for r in after[1:-1])
    inbound = [r for r in rules if r.startswith("-A INPUT")]
    assert "-A INPUT -d 10.213.7.2/32 -p tcp --dport 8080 -m conntrack --ctstate NEW -j ACCEPT" in inbound
    assert "-A INPUT -d 10.213.7.2/32 -p tcp --dport 9418 -m conntrack --ctstate NEW -j ACCEPT" in inbound
    assert inbound[-2:] == ["-A INPUT -p tcp -j REJECT --reject-with tcp-reset",
                            "-A INPUT -j REJECT --reject-with icmp-port-unreachable"]


def test_the_gate_reaches_the_proxy_port_only_with_an_https_upstream():
    https = {"forge": {"kind": "https", "url": "https://git.test/p.git"}}
    path = {"home": {"kind": "path", "url": "/srv/p"}}
    gate_rule = (f"-A OUTPUT -o lo -d 10.213.7.2/32 -p tcp --dport 8080 -m owner --uid-owner {GATE_UID} -j ACCEPT")
    assert gate_rule in rules_of(config(remotes=https)).splitlines()
    rules = rules_of(config(remotes=path)).splitlines()
    assert not any(f"--uid-owner {GATE_UID}" in r for r in rules)  # a path upstream needs no network at all


def test_a_rehearsal_lets_the_egress_stage_reach_the_scripted_models_port_alone():
    rules = rules_of(config(scripted_port=8099)).splitlines()
    rule = f"-A OUTPUT -o lo -d 127.0.0.1/32 -p tcp --dport 8099 -m owner --uid-owner {EGRESS_UID} -j ACCEPT"
    assert rule in rules and rules.index(rule) < rules.index("-A OUTPUT -o lo -j REJECT --reject-with icmp-admin-prohibited")
    assert not any("8099" in r for r in rules_of(config()).splitlines())


@pytest.mark.parametrize("uid", [PROXY_UID, EGRESS_UID])
def test_the_gate_never_shares_another_daemons_user(uid):
    with pytest.raises(SystemExit, match="another daemon's user"):
        rules_of(config(run_as=[uid, uid]))


def test_squid_lets_the_proxy_reach_the_scripted_model_and_no_other_loopback_port(tmp_path):
    lines = egress_stage.squid_config(egress(host_addresses=["127.0.0.1"]), tmp_path, script_port=8099).splitlines()
    access = [line for line in lines if line.startswith("http_access")]
    # Before the host's addresses (127.0.0.1 among them) are refused; never for a preflight question.
    assert access[0] == "http_access allow proxy_stage model_script model_script_port !preflight"
    assert access[1] == "http_access deny refused_always"
    assert {"acl model_script dst 127.0.0.1/32", "acl model_script_port port 8099"} <= set(lines)
    assert not any("model_script" in line for line in egress_stage.squid_config(egress(), tmp_path).splitlines())


def test_packet_filter_drops_all_ipv6():
    assert netfilter.ipv6_rules().splitlines()[1:4] == [":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]"]


def test_nameservers_are_read_from_resolv_conf(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("search x\nnameserver 127.0.0.11\nnameserver fd00::1\noptions ndots:0\n")
    assert netfilter.nameservers(str(conf)) == ["127.0.0.11"]


def test_the_plan_refuses_the_engines_networks_and_the_hosts_addresses(monkeypatch):
    from types import SimpleNamespace

    from bottle_docker import network

    networks = [{"IPAM": {"Config": [{"Subnet": "172.18.0.0/16", "Gateway": "172.18.0.1"}, {"Subnet": "fd00::/64"}]}},
                {"IPAM": {"Config": [{"Subnet": "203.0.113.0/24"}]}}]
    client = SimpleNamespace(api=SimpleNamespace(networks=lambda: networks))
    monkeypatch.setattr(network, "host_addresses", lambda: [ipaddress.ip_address("192.0.2.7")])
    plan = SimpleNamespace(network=SimpleNamespace(subnet="10.213.9.0/24"), egress=EgressPlan())
    network.refuse_engine_and_host(client, plan)
    assert {"172.18.0.0/16", "203.0.113.0/24", "10.213.9.0/24", "10.0.0.0/8"} <= set(plan.egress.refused_networks)
    assert plan.egress.host_addresses == ["172.18.0.1", "192.0.2.7"]


def test_ipv6_is_turned_off_on_the_bridge_when_the_host_allows_it(tmp_path):
    from bottle_docker.network import bridge_ipv6_off

    (tmp_path / "br-0123456789ab").mkdir()
    assert bridge_ipv6_off("br-0123456789ab", proc=tmp_path)
    assert (tmp_path / "br-0123456789ab" / "disable_ipv6").read_text() == "1\n"
    assert not bridge_ipv6_off("br-missing", proc=tmp_path)  # not this host's bridge, or not root: nothing done


def test_readiness_is_read_from_the_socket_table_not_by_connecting(tmp_path):
    from bottle_core.bundle.image import entrypoint

    table = tmp_path / "tcp"
    table.write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 0100007F:0C38 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 1 1\n"
        "   1: 02D50A0A:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   100        0 2 1\n"
        "   2: 00000000:24CA 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 3 1\n"
        "   3: 0100007F:1FA3 0100007F:0C38 01 00000000:00000000 00:00000000 00000000   100        0 4 1\n")
    tables = (str(table),)
    assert entrypoint.listening(("127.0.0.1", 3128), tables)  # squid on loopback
    assert entrypoint.listening(("10.10.213.2", 8080), tables)  # the proxy on the bottle-side address
    assert entrypoint.listening(("10.10.213.2", 9418), tables)  # bound to every address
    assert not entrypoint.listening(("127.0.0.1", 8099), tables)  # an established connection is not a listener
    assert not entrypoint.listening(("127.0.0.1", 8080), tables)


def test_the_image_makes_every_user_the_daemon_table_names():
    from bottle_core.bundle.contract import image_context
    from bottle_core.bundle.image import daemons

    dockerfile = (image_context() / "Dockerfile").read_text()
    fixed = {row.user(config()) for row in daemons.TABLE}
    assert fixed == {daemons.PROXY_USER, daemons.EGRESS_USER, daemons.GATE_USER}
    for user in fixed:
        assert f"--shell /usr/sbin/nologin {user}" in dockerfile, f"the Dockerfile makes no user {user}"


def test_the_contracts_ports_are_the_tables_bottle_side_rows():
    from bottle_core.bundle.image import daemons

    supervised = {**config(), "supervise": {"mode": "enforce", "listen_host": "10.213.7.2", "port": 9419}}
    assert daemons.bottle_side_ports(config()) == [8080, 9418]
    assert daemons.bottle_side_ports(supervised) == [8080, 9418, 9419]
    assert "127.0.0.1" not in {row.address(supervised)[0] for row in daemons.running(supervised) if row.bottle_side}


def test_squids_cache_manager_serves_no_one_and_it_names_no_host_of_its_own(tmp_path):
    lines = egress_stage.squid_config(egress(), tmp_path).splitlines()
    assert lines.index("http_access deny manager") < lines.index("http_access allow proxy_stage")
    assert f"visible_hostname {egress_stage.VISIBLE_HOSTNAME}" in lines


def test_squids_pages_are_fixed_sentences_and_its_details_catalogue_is_kept(tmp_path, monkeypatch):
    shipped = tmp_path / "templates"
    shipped.mkdir()
    (shipped / "ERR_INVALID_URL").write_text("<p>%U could not be retrieved</p> Generated %T by %h (squid)")
    (shipped / "generic").write_text("<p>%U by %h</p>")
    (shipped / egress_stage.DETAILS).write_text("name: SQUID_X509_V_ERR_INFINITE_VALIDATION\n")
    monkeypatch.setattr(egress_stage, "SQUID_TEMPLATES", shipped)
    egress_stage.write_error_pages(tmp_path / "errors")
    pages = {p.name: p.read_text() for p in (tmp_path / "errors").iterdir()}
    assert pages["ERR_INVALID_URL"] == "bottle: the egress stage did not relay this request (ERR_INVALID_URL)\n"
    assert pages["generic"] == "bottle: the egress stage did not relay this request (generic)\n"
    assert pages[egress_stage.DETAILS] == (shipped / egress_stage.DETAILS).read_text()
    assert not any("%" in text for name, text in pages.items() if name.startswith("ERR_") and "BOTTLE" not in name)


def test_squid_answers_no_request_in_the_origins_place(tmp_path):
    lines = egress_stage.squid_config(egress(), tmp_path).splitlines()
    assert {"acl echoes method TRACE", "acl hop_answered req_header Max-Forwards ."} <= set(lines)
    for refusal in ("http_access deny echoes", "http_access deny hop_answered"):
        assert lines.index(refusal) < lines.index("http_access allow proxy_stage")
