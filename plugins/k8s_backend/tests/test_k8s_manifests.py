"""What reaches the cluster: the pods' and policies' security settings, read from the objects bottle sends."""

from __future__ import annotations

import json

import pytest

from bottle_core.bundle import contract
from bottle_k8s import agent_filter, labels, manifests
from bottle_k8s.launch import readdressed


@pytest.fixture
def plan(plan_factory, tmp_path):
    made = plan_factory(cwd=tmp_path)
    return readdressed(made, "10.244.0.7")


def containers(pod, init=False):
    return {c["name"]: c for c in pod["spec"]["initContainers" if init else "containers"]}


def test_the_agent_runs_as_uid_1000_with_no_capability_no_escalation_and_seccomp(plan):
    pod = manifests.agent_pod(plan, "bottle-agent:x", "bottle-bundle:x")
    agent = containers(pod)["agent"]
    context = agent["securityContext"]
    assert context["runAsUser"] == 1000 and context["runAsGroup"] == 1000 and context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["allowPrivilegeEscalation"] is False
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_no_pod_of_a_bottle_gets_a_service_account_token_or_service_links(plan):
    for pod in (manifests.agent_pod(plan, "a:x", "b:x"), manifests.bundle_pod(plan, "b:x")):
        assert pod["spec"]["automountServiceAccountToken"] is False
        assert pod["spec"]["enableServiceLinks"] is False


def test_only_the_packet_filter_init_containers_hold_net_admin(plan):
    for pod in (manifests.agent_pod(plan, "a:x", "b:x"), manifests.bundle_pod(plan, "b:x")):
        for name, container in {**containers(pod), **containers(pod, init=True)}.items():
            added = container["securityContext"]["capabilities"].get("add", [])
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            if name == "netfilter":
                assert "NET_ADMIN" in added
            else:
                assert "NET_ADMIN" not in added and "NET_RAW" not in added, name


def test_the_agent_pods_root_container_has_no_capability_and_the_agent_mounts_its_folders_read_only(plan):
    pod = manifests.agent_pod(plan, "a:x", "b:x")
    root, agent = containers(pod)["root"], containers(pod)["agent"]
    assert root["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    shared = {m["mountPath"]: m for m in agent["volumeMounts"] if m["name"] in manifests.ROOT_PATHS}
    assert set(shared) == set(manifests.ROOT_PATHS.values())
    assert all(m.get("readOnly") for m in shared.values())


def test_the_agent_gets_the_manifests_limits_the_proxy_and_only_the_bundle_as_resolver(plan):
    pod = manifests.agent_pod(plan, "a:x", "b:x")
    agent = containers(pod)["agent"]
    assert agent["resources"]["limits"] == {"memory": str(plan.resources.memory_bytes), "cpu": str(plan.resources.cpus)}
    env = {e["name"]: e["value"] for e in agent["env"]}
    assert env["HTTPS_PROXY"] == "http://10.244.0.7:8080"
    assert "10.244.0.7" in env["NO_PROXY"]
    assert pod["spec"]["dnsPolicy"] == "None" and pod["spec"]["dnsConfig"] == {"nameservers": ["10.244.0.7"]}


def test_the_agents_packet_filter_names_the_bundle_and_its_contract_ports(plan):
    pod = manifests.agent_pod(plan, "a:x", "b:x")
    env = {e["name"]: e["value"] for e in containers(pod, init=True)["netfilter"]["env"]}
    ports = ",".join(str(p) for p in sorted(contract.listening_ports(plan)))
    assert f"-d 10.244.0.7/32 -p tcp -m multiport --dports {ports}" in env["BOTTLE_AGENT_RULES4"]


def test_no_secret_value_is_in_any_object_sent_to_the_cluster(plan_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-very-secret-value")
    made = readdressed(plan_factory(cwd=tmp_path), "10.244.0.7")
    objects = [manifests.bundle_pod(made, "b:x"), manifests.agent_pod(made, "a:x", "b:x"),
               *manifests.network_policies(made)]
    assert "sk-very-secret-value" not in json.dumps(objects)
    assert "sk-very-secret-value" in json.dumps(contract.secret_table(made))  # the table the exec stream carries


def test_the_bundle_keeps_only_the_contracts_capabilities_and_limits(plan):
    pod = manifests.bundle_pod(plan, "b:x")
    bundle = containers(pod)["bundle"]
    assert bundle["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": contract.CAPABILITIES}
    assert bundle["resources"]["limits"]["memory"] == str(contract.LIMITS["memory_bytes"])
    assert all(m.get("readOnly") for m in bundle["volumeMounts"])


def test_the_bundles_filter_lets_only_the_agent_pod_connect(plan):
    pod = manifests.bundle_pod(plan, "b:x")
    script = containers(pod, init=True)["netfilter"]["command"][-1]
    assert " ".join(contract.NETFILTER_COMMAND) in script
    assert '-I INPUT 1 ! -i lo -p tcp -m conntrack --ctstate NEW ! -s "$peer/32" -j REJECT' in script


def test_every_object_is_labelled_with_the_slug(plan):
    objects = [manifests.bundle_pod(plan, "b:x"), manifests.agent_pod(plan, "a:x", "b:x"),
               *manifests.network_policies(plan)]
    for obj in objects:
        assert obj["metadata"]["labels"][labels.SLUG] == plan.slug
        assert obj["metadata"]["labels"][labels.MANAGED] == "true"
        assert obj["metadata"]["annotations"][labels.STATE_DIR] == plan.state_dir


def test_network_policies_let_the_agent_reach_its_bundle_ports_alone(plan):
    agent_policy, bundle_policy = manifests.network_policies(plan)
    assert agent_policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and agent_policy["spec"]["ingress"] == []
    (rule,) = agent_policy["spec"]["egress"]
    assert rule["to"] == [{"podSelector": {"matchLabels": {labels.SLUG: plan.slug, labels.ROLE: "bundle"}}}]
    assert {p["port"] for p in rule["ports"]} == set(contract.listening_ports(plan))
    (inbound,) = bundle_policy["spec"]["ingress"]
    assert inbound["from"] == [{"podSelector": {"matchLabels": {labels.SLUG: plan.slug, labels.ROLE: "agent"}}}]


def test_local_images_are_never_pulled_and_registry_images_are():
    assert manifests._pull("bottle-agent:abc") == "Never"
    assert manifests._pull("registry.example:5000/bottle-agent:abc") == "IfNotPresent"


def test_agent_filter_rules_drop_by_default_and_accept_only_the_bundle():
    rules = agent_filter.ipv4_rules("10.1.2.3", [8080, 9418, 8080])
    lines = rules.splitlines()
    assert ":OUTPUT DROP [0:0]" in lines and ":INPUT DROP [0:0]" in lines
    accepts = [line for line in lines if line.startswith("-A OUTPUT") and line.endswith("-j ACCEPT")]
    assert accepts == ["-A OUTPUT -o lo -j ACCEPT",
                       "-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                       "-A OUTPUT -d 10.1.2.3/32 -p tcp -m multiport --dports 8080,9418 -m conntrack --ctstate NEW "
                       "-j ACCEPT"]
    assert lines[-1] == "COMMIT"
    with pytest.raises(ValueError):
        agent_filter.ipv4_rules("10.1.2.3", [])


def test_readdressed_plan_points_the_proxy_at_the_pod_and_is_saved(plan_factory, tmp_path):
    from bottle_core.plan import Plan

    made = plan_factory(cwd=tmp_path)
    moved = readdressed(made, "10.244.3.4")
    assert moved.proxy.listen_host == moved.network.bundle_ip == "10.244.3.4"
    assert moved.network.subnet == "10.244.3.4/32"
    saved = Plan.read(f"{moved.state_dir}/plan.json")
    assert saved.network.bundle_ip == "10.244.3.4"
    assert made.network.bundle_ip == "0.0.0.0" or made.network.bundle_ip != "10.244.3.4"  # the given Plan unchanged
