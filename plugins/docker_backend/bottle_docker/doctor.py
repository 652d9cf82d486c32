"""``bottle doctor`` for docker: the engine answers, and a throwaway container of the base image really runs."""

from __future__ import annotations

from .engine import availability, client

RUN_TIMEOUT = 60


def diagnose(base_image: str) -> dict:
    """Checks: engine, base image, agent and bundle images, and a container started and run to its end."""
    checks: list[dict] = []

    def check(name: str, problem: str | None, **extra) -> bool:
        checks.append({"name": name, "ok": problem is None, "detail": problem, **extra})
        return problem is None

    if check("engine", availability()):
        engine = client()
        base_id = _base_image(engine, base_image)
        if check("base-image", None if base_id else f"{base_image} is not in the engine: pull or build it"):
            from bottle_core.images import image_names

            names = image_names(base_image, base_id)
            missing = [names[role] for role in ("agent", "bundle") if not _present(engine, names[role])]
            check("images", f"not built yet: {', '.join(missing)} (`bottle image build`, or the first launch "
                            "builds them)" if missing else None)
            check("container", _run_throwaway(engine, base_image))
    ok = all(c["ok"] for c in checks if c["name"] != "images")  # images are built on first use
    reason = None if ok else "; ".join(c["detail"] for c in checks if not c["ok"] and c["name"] != "images")
    return {"ok": ok, "reason": reason, "checks": checks}


def _base_image(engine, name: str) -> str | None:
    from docker.errors import ImageNotFound

    try:
        return engine.images.get(name).id
    except ImageNotFound:
        return None


def _present(engine, name: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        engine.images.get(name)
    except ImageNotFound:
        return False
    return True


def _run_throwaway(engine, image: str) -> str | None:
    """Run ``true`` in a container with no network, removed afterwards; None when it exits 0."""
    from docker.errors import DockerException

    container = None
    try:
        container = engine.containers.create(image, ["true"], network_mode="none",
                                             labels={"bottle.role": "doctor"})
        container.start()
        status = container.wait(timeout=RUN_TIMEOUT)
    except DockerException as exc:
        return f"a throwaway container did not run: {exc}"
    finally:
        if container is not None:
            try:
                container.remove(force=True)
            except DockerException:
                pass
    if status.get("StatusCode") != 0:
        return f"a throwaway container exited {status.get('StatusCode')} instead of 0"
    return None
