"""The objects of one bottle on a cluster, as plain API dictionaries: the bundle pod, the agent pod, their policies.

Pure functions of the Plan, so what reaches the cluster can be read and
tested without one.

* The **bundle pod** runs the bundle image as on docker (root with only the
  contract's capabilities, which its entry point drops when it starts each
  daemon). Its files -- configuration and secrets -- reach it through an exec
  stream into the ``files`` init container, onto a memory-backed volume of
  the pod alone: they never become API objects (no Secret in etcd). The
  ``netfilter`` init container (the one with NET_ADMIN) then installs the
  contract's packet filter, plus a rule that lets only the agent pod connect.
  A git remote on the user's machine is lent to the bundle as a seed on a
  volume of its own at the contract's upstreams folder (see :mod:`.home`).
* The **agent pod** runs as uid 1000 with no capability, no privilege
  escalation, seccomp RuntimeDefault, no service-account token, the
  manifest's limits. Its ``netfilter`` init container installs a packet
  filter that lets it reach only the bundle pod's ports. Its system trust
  store and Claude Code's managed settings are volumes it mounts read-only;
  the ``root`` container (uid 0, no capability) writes them for core's
  provisioning, since an exec cannot change user on Kubernetes.
"""

from __future__ import annotations

from bottle_core import agent as agent_sandbox
from bottle_core.bundle import contract
from bottle_core.plan import Plan

from . import agent_filter, labels, seccomp, settings

#: Where the bundle's files are put: a memory-backed volume over the contract's /etc/bottle.
FILES_DIR = "/etc/bottle"
#: Written last by the exec stream: the ``files`` init container ends when it appears.
FILES_DONE = f"{FILES_DIR}/.complete"
#: The agent pod's address, for the bundle's rule that only it may connect.
PEER_FILE = f"{FILES_DIR}/k8s-peer"
#: How long the ``files`` init container waits for its files (tenths of a second).
FILES_WAIT_TENTHS = 1800

#: The agent's system paths core writes as root (trust store, managed settings): volume name -> path.
ROOT_PATHS = {"certs": "/etc/ssl/certs", "cacerts": "/usr/local/share/ca-certificates",
              "managed": "/etc/claude-code"}

SECCOMP = {"seccompProfile": {"type": "RuntimeDefault"}}


def no_api_variables(port: int = 443) -> dict[str, str]:
    """The API server's service variables, emptied: the kubelet sets them in every container even with
    ``enableServiceLinks`` off, and a variable the spec names itself wins. The agent learns no address from them."""
    names = ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_SERVICE_PORT_HTTPS", "KUBERNETES_PORT",
             f"KUBERNETES_PORT_{port}_TCP", f"KUBERNETES_PORT_{port}_TCP_PROTO", f"KUBERNETES_PORT_{port}_TCP_PORT",
             f"KUBERNETES_PORT_{port}_TCP_ADDR"]
    return {name: "" for name in names}


def pod_name(slug: str, role: str) -> str:
    return f"bottle-{slug}-{role}"


def _metadata(plan: Plan, role: str, name: str) -> dict:
    return {"name": name, "labels": labels.for_bottle(plan, role), "annotations": labels.annotations(plan)}


def _security(user: int, *, add: list[str] = (), non_root: bool = False) -> dict:
    context = {"runAsUser": user, "allowPrivilegeEscalation": False,
               "capabilities": {"drop": ["ALL"], **({"add": list(add)} if add else {})}}
    if non_root:
        context.update(runAsGroup=user, runAsNonRoot=True)
    return context


def _env(mapping: dict[str, str]) -> list[dict]:
    return [{"name": key, "value": value} for key, value in mapping.items()]


def _pod_spec(**spec) -> dict:
    """What every bottle pod shares: never restarted, no token, no service links, seccomp on."""
    return {"restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 1, "securityContext": dict(SECCOMP), **spec}


def bundle_pod(plan: Plan, image: str) -> dict:
    """The bundle pod; its files and its peer arrive later, through :data:`FILES_DIR` (see module doc)."""
    files = {"name": "files", "mountPath": FILES_DIR}
    files_ro = {**files, "readOnly": True}
    wait = (f'i=0; while [ ! -e {FILES_DONE} ] && [ $i -lt {FILES_WAIT_TENTHS} ]; do sleep 0.1; i=$((i+1)); done; '
            f'[ -e {FILES_DONE} ] || {{ echo "bottle-k8s: no files came" >&2; exit 1; }}')
    limits = contract.LIMITS
    # Path remotes' seeds: on the node's disk (a repository can be large), the pod's alone.
    lent = any(remote.kind == "path" for remote in plan.git_gate.remotes.values())
    upstreams = [{"name": "upstreams", "emptyDir": {}}] if lent else []
    upstream_mounts = [{"name": "upstreams", "mountPath": contract.GIT_UPSTREAMS}] if lent else []
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": _metadata(plan, "bundle", pod_name(plan.slug, "bundle")),
        "spec": _pod_spec(
            # The node's resolvers, for the egress stage alone (cluster DNS would list the cluster's services).
            dnsPolicy="Default",
            **({"hostAliases": aliases} if (aliases := settings.bundle_hosts()) else {}),
            volumes=[{"name": "files", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}, *upstreams],
            initContainers=[
                {"name": "files", "image": image, "imagePullPolicy": _pull(image), "command": ["sh", "-c", wait],
                 "securityContext": _security(0), "volumeMounts": [files], "resources": _small()},
                {"name": "netfilter", "image": image, "imagePullPolicy": _pull(image),
                 "command": ["sh", "-ec", " ".join(contract.NETFILTER_COMMAND) + "; "
                             + agent_filter.bundle_peer_rule(PEER_FILE)],
                 "env": _env(contract.bundle_environment()),
                 "securityContext": _security(0, add=contract.NETFILTER_CAPABILITIES),
                 "volumeMounts": [files_ro], "resources": _small()},
            ],
            containers=[
                {"name": "bundle", "image": image, "imagePullPolicy": _pull(image),
                 "env": _env({**no_api_variables(), **contract.bundle_environment()}),
                 "securityContext": _security(0, add=contract.CAPABILITIES),
                 "volumeMounts": [files_ro, *upstream_mounts],
                 "resources": {"limits": {"memory": str(limits["memory_bytes"]), "cpu": str(limits["cpus"])},
                               "requests": {"memory": "128Mi", "cpu": "100m"}}},
            ],
        ),
    }


def agent_pod(plan: Plan, agent_image: str, filter_image: str) -> dict:
    """The agent pod: its init containers set its packet filter and seed its root-owned volumes."""
    res = plan.resources
    bundle_ip = plan.network.bundle_ip
    ports = contract.listening_ports(plan)
    root_volumes = [{"name": name, "emptyDir": {"sizeLimit": "16Mi"}} for name in ROOT_PATHS]
    # An emptyDir starts as mode 0777: a folder the image lacks gets 0755 like one core would make (cp -a gives those
    # the image has their own), so the agent sees no world-writable system folder even behind its read-only mount.
    seed = "set -e; chmod 755 /seed/*; " + " ".join(f"if [ -d {path} ]; then cp -a {path}/. /seed/{name}/; fi;"
                                 for name, path in ROOT_PATHS.items())
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": _metadata(plan, "agent", pod_name(plan.slug, "agent")),
        "spec": _pod_spec(
            # Names are the proxy's business: the only resolver is the bundle, which serves no DNS.
            dnsPolicy="None", dnsConfig={"nameservers": [bundle_ip]},
            volumes=[{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "512Mi"}}, *root_volumes],
            initContainers=[
                {"name": "netfilter", "image": filter_image, "imagePullPolicy": _pull(filter_image),
                 "command": ["sh", "-c", agent_filter.INSTALL_SCRIPT],
                 "env": _env({"BOTTLE_AGENT_RULES4": agent_filter.ipv4_rules(bundle_ip, ports),
                              "BOTTLE_AGENT_RULES6": agent_filter.ipv6_rules()}),
                 "securityContext": _security(0, add=contract.NETFILTER_CAPABILITIES), "resources": _small()},
                {"name": "seed", "image": agent_image, "imagePullPolicy": _pull(agent_image),
                 "command": ["sh", "-c", seed], "securityContext": _security(0), "resources": _small(),
                 "volumeMounts": [{"name": name, "mountPath": f"/seed/{name}"} for name in ROOT_PATHS]},
            ],
            containers=[
                {"name": "agent", "image": agent_image, "imagePullPolicy": _pull(agent_image),
                 "command": ["sleep", "infinity"], "workingDir": plan.guest.workspace,
                 "env": _env(seccomp.set_aside({**no_api_variables(), **agent_sandbox.environment(plan)})),
                 "securityContext": _security(plan.guest.uid, non_root=True),
                 "resources": {"limits": {"memory": str(res.memory_bytes), "cpu": str(res.cpus)},
                               "requests": {"memory": "64Mi", "cpu": "100m"}},
                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"},
                                  *({"name": name, "mountPath": path, "readOnly": True}
                                    for name, path in ROOT_PATHS.items())]},
                {"name": "root", "image": agent_image, "imagePullPolicy": _pull(agent_image),
                 "command": ["sleep", "infinity"], "securityContext": _security(0), "resources": _small(),
                 "volumeMounts": [{"name": name, "mountPath": path} for name, path in ROOT_PATHS.items()]},
            ],
        ),
    }


def network_policies(plan: Plan) -> list[dict]:
    """For clusters that enforce NetworkPolicy: the agent talks to its bundle's ports alone, and only it to them.

    The pods' own packet filters hold this on every cluster; these add the
    cluster's enforcement where it exists.
    """
    ports = [{"protocol": "TCP", "port": port} for port in contract.listening_ports(plan)]
    agent = {"matchLabels": {labels.SLUG: plan.slug, labels.ROLE: "agent"}}
    bundle = {"matchLabels": {labels.SLUG: plan.slug, labels.ROLE: "bundle"}}

    def policy(role: str, spec: dict) -> dict:
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": f"bottle-{plan.slug}-{role}", "labels": labels.for_bottle(plan, "policy"),
                             "annotations": labels.annotations(plan)},
                "spec": spec}

    return [
        policy("agent", {"podSelector": agent, "policyTypes": ["Ingress", "Egress"], "ingress": [],
                         "egress": [{"to": [{"podSelector": bundle}], "ports": ports}]}),
        policy("bundle", {"podSelector": bundle, "policyTypes": ["Ingress"],
                          "ingress": [{"from": [{"podSelector": agent}], "ports": ports}]}),
    ]


def _pull(image: str) -> str:
    """Never pull an image imported into the node; pull one named with a registry when missing."""
    first = image.split("/", 1)[0]
    return "IfNotPresent" if "/" in image and ("." in first or ":" in first) else "Never"


def _small() -> dict:
    return {"limits": {"memory": "64Mi", "cpu": "200m"}, "requests": {"memory": "16Mi", "cpu": "10m"}}
