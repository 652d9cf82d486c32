"""``bottle doctor`` for the k8s backend: the cluster answers, this user may do what a bottle needs, images can get there."""

from __future__ import annotations

from . import settings

#: What a bottle does in its namespace (docs/kubernetes.md lists the same as RBAC rules).
NEEDED = [("create", "pods", ""), ("delete", "pods", ""), ("get", "pods", ""), ("list", "pods", ""),
          ("create", "pods/exec", ""), ("get", "pods/log", ""), ("list", "secrets", ""), ("delete", "secrets", ""),
          ("list", "configmaps", ""), ("delete", "configmaps", ""),
          ("create", "networkpolicies", "networking.k8s.io"), ("delete", "networkpolicies", "networking.k8s.io"),
          ("list", "networkpolicies", "networking.k8s.io")]


def diagnose() -> dict:
    from .cluster import availability

    checks = []
    problem = availability()
    checks.append({"name": "cluster", "ok": problem is None, "detail": problem or f"namespace {settings.namespace()}"})
    if problem is None:
        checks += permission_checks()
    way = settings.CONTAINERD_ADDRESS.value() or settings.REGISTRY.value()
    checks.append({"name": "images", "ok": bool(way),
                   "detail": way or f"set {settings.CONTAINERD_ADDRESS.variable} or {settings.REGISTRY.variable}"})
    failed = [c for c in checks if not c["ok"]]
    return {"ok": not failed, "reason": f"{failed[0]['name']}: {failed[0]['detail']}" if failed else None,
            "checks": checks}


def permission_checks() -> list[dict]:
    """One check per verb a bottle needs, through SelfSubjectAccessReview."""
    from kubernetes import client

    from .cluster import api_client

    api = client.AuthorizationV1Api(api_client())
    checks = []
    for verb, resource, group in NEEDED:
        sub = resource.split("/")
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": {"namespace": settings.namespace(), "verb": verb, "group": group,
                                                  "resource": sub[0],
                                                  **({"subresource": sub[1]} if len(sub) > 1 else {})}}}
        try:
            allowed = api.create_self_subject_access_review(review).status.allowed
        except Exception as exc:  # noqa: BLE001 - one line in the report
            checks.append({"name": f"{verb} {resource}", "ok": False, "detail": str(exc).splitlines()[0]})
            continue
        checks.append({"name": f"{verb} {resource}", "ok": bool(allowed),
                       "detail": "allowed" if allowed else "not allowed (see docs/kubernetes.md: RBAC)"})
    return checks
