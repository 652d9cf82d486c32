"""Bringing a planned bottle up on the cluster, and taking all of it down again.

Order: secrets read and the images on the cluster (nothing exists yet if
either fails); the bundle pod created (its ``files`` init container waits);
its IP learnt and the Plan saved again with it; the agent pod (its packet
filter names that IP) and the NetworkPolicies created; the agent pod's IP
learnt; the bundle's files and its one peer sent in through an exec stream,
which lets its packet filter and then the bundle start; the git remotes on
this machine lent to the bundle pod (:mod:`.home`); the agent awaited.
Teardown first brings home what the gate accepted (:func:`.home.bring_home`,
however the run ended), then deletes every object labelled with the slug and
waits until the pods are gone (should this process die first, core's reaper
has ``stop_bottle`` do the same).
"""

from __future__ import annotations

from bottle_core.bundle import contract
from bottle_core.errors import BottleRuntimeError
from bottle_core.plan import Plan
from bottle_core.sandbox import Launch
from bottle_core.signals import deferred
from bottle_docker import sidecar

from . import home, images, inventory, manifests, pods, settings
from .bundle import PodBundle, send_files
from .cluster import core, networking
from .sandbox import K8sBottle
from .streams import api_message

#: Pods on a busy node take seconds to get an address and start; image trouble fails at once.
START_TIMEOUT = 180.0


def readdressed(plan: Plan, bundle_ip: str) -> Plan:
    """The Plan with the bundle pod's address (the cluster gives it), saved again."""
    moved = plan.model_copy(deep=True, update={
        "network": plan.network.model_copy(update={"subnet": f"{bundle_ip}/32", "bundle_ip": bundle_ip}),
        "proxy": plan.proxy.model_copy(update={"listen_host": bundle_ip}),
    })
    moved.save()
    return moved


class K8sLaunch(Launch):
    """The context manager ``launch`` returns: enter brings the bottle up, exit removes all of it."""

    def __init__(self, plan: Plan):
        super().__init__(plan)
        self.namespace = plan.backend_options.get("namespace") or settings.namespace()
        self.bundle: PodBundle | None = None
        self.created = False

    def start(self) -> None:
        from kubernetes.client.rest import ApiException

        plan = self.plan
        secrets = contract.secret_table(plan)  # before anything starts: a missing secret leaves nothing behind
        sidecar.ensure_images(plan.images)
        names = images.ensure_on_cluster([plan.images["bundle"], plan.images["agent"]])
        bundle_image, agent_image = names[plan.images["bundle"]], names[plan.images["agent"]]
        api, ns = core(), self.namespace
        bundle_pod = manifests.pod_name(plan.slug, "bundle")
        agent_pod = manifests.pod_name(plan.slug, "agent")
        try:
            self.created = True  # from here on, teardown sweeps the slug
            api.create_namespaced_pod(ns, manifests.bundle_pod(plan, bundle_image))
            bundle_ip = pods.wait_for(bundle_pod, ns, "get an address", pods.ip_of, START_TIMEOUT,
                                      hint=_image_hint())
            plan = self.plan = readdressed(plan, bundle_ip)
            api.create_namespaced_pod(ns, manifests.agent_pod(plan, agent_image, bundle_image))
            for policy in manifests.network_policies(plan):
                networking().create_namespaced_network_policy(ns, policy)
            agent_ip = pods.wait_for(agent_pod, ns, "get an address", pods.ip_of, START_TIMEOUT, hint=_image_hint())
            send_files(bundle_pod, ns, contract.bundle_files(plan, secrets), agent_ip)
            self.bundle = PodBundle(bundle_pod, ns, plan.slug)
            self.bundle.file_logs(plan.state_dir)
            if home.path_remotes(plan):
                pods.wait_for(bundle_pod, ns, "start its bundle", pods.running("bundle"), START_TIMEOUT)
                home.lend(plan, self.bundle)
            pods.wait_for(agent_pod, ns, "start its agent", pods.running("agent"), START_TIMEOUT, hint=_image_hint())
        except ApiException as exc:
            raise BottleRuntimeError(f"the cluster refused to start bottle {plan.slug}: {exc.status} {exc.reason}: "
                                     f"{api_message(exc.body)}") from None
        self.bottle = K8sBottle(plan, agent_pod, ns, self.bundle)

    def teardown(self) -> None:
        """Delete every object labelled with the slug and wait for the pods to go; never raises."""
        with deferred():
            if self.bundle is not None:
                self.take_home()
                self.bundle.finish_logs()
            if self.created:
                try:
                    inventory.remove_slug(self.plan.slug, self.namespace, ended=False)
                except Exception as exc:  # noqa: BLE001 - say so, and leave the rest to `bottle gc`
                    import sys

                    print(f"bottle: could not remove bottle {self.plan.slug} from the cluster: {exc}; "
                          "run `bottle --backend k8s gc`", file=sys.stderr)
            self.created = False

    def take_home(self) -> None:
        """Bring home what the gate accepted, saying each ref on stderr; a failure is said, never raised."""
        import sys

        if not home.was_lent(self.plan):
            return
        try:
            for record in home.bring_home(self.plan, self.bundle):
                print(f"bottle: {home.describe(record)}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - the removal must still run
            pod = pods.read(self.bundle.pod, self.namespace)
            if pod is None or pod.metadata.deletion_timestamp is not None:  # `bottle stop` brought it home first
                print(f"bottle: git: bottle {self.plan.slug} was removed from outside; what came home before is in "
                      f"`bottle logs {self.plan.slug} --git`", file=sys.stderr)
                return
            print(f"bottle: git: could not bring the gate's refs home from bottle {self.plan.slug}: {exc}",
                  file=sys.stderr)


def _image_hint() -> str:
    return "run `bottle image build`, and check the BOTTLE_K8S_* image settings (docs/kubernetes.md)"
