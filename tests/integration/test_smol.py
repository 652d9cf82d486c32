"""The smol backend against the real smolvm shipped in the smolmachines wheel.

What runs everywhere smolvm installs: version detection, availability,
``machine create`` with the backend's exact flags (the agent image piped from
the Docker engine), reading the machine back from ``ls --json``, smolvm's own
error texts, and ``delete -f``. Nothing here boots a VM.

What needs a booted guest (start, exec, copy in/out) runs where ``bottle
doctor``'s throwaway boot succeeded (cached per engine and host), and is
skipped with the doctor's reason elsewhere; a test here checks that reason is
the true one: a guest that failed to boot, not a missing package or a
permission the set-up could have granted.

Every smolvm call uses a throwaway ``--state-dir`` so a user's own machines
are never seen or touched.
"""

from __future__ import annotations

import io
import json
import re
import os
from pathlib import Path
import shutil
import tarfile
import tempfile
import uuid

import pytest

from bottle_core.manifest import Manifest
from bottle_core.spec import BottleSpec
from bottle_smol import binary
from bottle_smol.availability import host_problems
from bottle_smol.engine import Engine, SmolvmError
from bottle_smol.machine import WORKLOAD, create_options, labels, machine_name, running_machine
from bottle_smol.prepare import prepare_plan
from bottle_smol.sandbox import SmolBottle

from .bottles import bottle_cli, resources_of

pytestmark = pytest.mark.integration

TEST_LABEL = "bottle.test"


@pytest.fixture
def wheel_smolvm(monkeypatch, tmp_path):
    """The smolvm of the smolmachines wheel, with its state kept under tmp_path."""
    if binary.wheel_folder() is None:
        pytest.skip("the smolmachines wheel is not installed (pip install bottle-smol)")
    monkeypatch.delenv("BOTTLE_SMOLVM", raising=False)
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                              if not os.path.exists(os.path.join(p, "smolvm"))))
    # A short path: smolvm keeps each machine's unix sockets under it (107-byte limit).
    state = tempfile.mkdtemp(prefix="smol-")
    monkeypatch.setenv("BOTTLE_SMOLVM_STATE_DIR", state)
    found = binary.find()
    assert found.source == "smolmachines"
    engine = Engine(found)
    try:
        yield engine
        for machine in engine.ls():  # nothing may outlive the test, even after a failure
            engine.delete(machine["name"])
    finally:
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def docker_client():
    docker = pytest.importorskip("docker")
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Docker engine: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def tiny_image(docker_client):
    """A one-file image made on the spot, so piping ``docker save`` into smolvm stays quick."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    name = f"bottle-smol-test:{uuid.uuid4().hex[:8]}"
    repo, tag = name.split(":")
    docker_client.api.import_image_from_data(buffer.getvalue(), repository=repo, tag=tag,
                                             changes=[f"LABEL {TEST_LABEL}=1"])
    yield name
    docker_client.images.remove(name, force=True)


@pytest.fixture
def plan(manifest_factory, tmp_path, wheel_smolvm, tiny_image, monkeypatch):
    manifest = Manifest.load(manifest_factory({
        "bottles": {"dev": {"cpus": 1, "memory": "512m", "env": {"FOO": "bar"}}},
        "agents": {"demo": {"prompt": "hi", "bottle": "dev"}},
    }))
    return prepare_plan(BottleSpec(manifest, "demo", cwd=tmp_path), tmp_path / "state")


def test_the_wheel_binary_is_a_checked_version(wheel_smolvm):
    low, high = binary.CHECKED
    assert low <= wheel_smolvm.version < high
    wheel_smolvm.check_version()


def test_with_the_wheel_installed_only_the_hypervisor_can_be_missing(wheel_smolvm):
    # The package brings the engine, and the set-up (scripts/kvm.sh) opens /dev/kvm where there is one.
    assert {name for name, _ in host_problems()} <= {"hypervisor"}


def test_create_with_the_backends_flags_then_delete(wheel_smolvm, plan, docker_client, tiny_image):
    name = machine_name(plan.slug)
    stream = docker_client.images.get(tiny_image).save(named=True)
    wheel_smolvm.create(name, labels={**labels(plan), TEST_LABEL: "1"}, image="-", options=create_options(plan),
                        workload=WORKLOAD, stdin=stream)
    (listed,) = wheel_smolvm.ls()
    assert listed["name"] == name and listed["state"] == "created"
    assert listed["labels"]["bottle.slug"] == plan.slug and listed["labels"][TEST_LABEL] == "1"
    assert listed["image"].startswith("local:")
    # Fields newer smolvm versions add; where present they must show the policy bottle asked for.
    bundle = plan.network.bundle_ip
    if "allowed_cidrs" in listed:
        assert listed["allowed_cidrs"] == [f"{bundle}/32"]
    if "dns" in listed:
        assert listed["dns"] == bundle
    assert listed.get("cmd", list(WORKLOAD)) == list(WORKLOAD)
    assert listed["network"] is True
    assert wheel_smolvm.status(name)["state"] == "created"

    with pytest.raises(SmolvmError, match="already exists"):
        wheel_smolvm.create(name, labels={}, image="-", options=[], workload=["true"], stdin=b"")
    with pytest.raises(SmolvmError, match="is not running"):
        wheel_smolvm.call("exec", ["--name", name, "--", "true"])
    wheel_smolvm.stop(name)  # not running: smolvm says so and exits 0

    wheel_smolvm.delete(name)
    assert wheel_smolvm.ls() == []
    assert wheel_smolvm.status(name) is None


def test_the_real_parser_accepts_every_exec_the_handle_makes(wheel_smolvm, plan, docker_client, tiny_image):
    """Each exec argv of the handle, given to the real binary on a machine never started.

    The parser accepting it shows as smolvm's own "is not running" (exit 1),
    not a usage error (exit 2): so the flags, their order and ``--`` are
    right for this version, even where no guest can run them.
    """
    name = machine_name(plan.slug)
    stream = docker_client.images.get(tiny_image).save(named=True)
    wheel_smolvm.create(name, labels={TEST_LABEL: "1"}, image="-", options=create_options(plan), workload=WORKLOAD,
                        stdin=stream)
    handle = SmolBottle(plan, wheel_smolvm, name)
    calls = [
        wheel_smolvm.exec_args(name, ["sh", "-c", "exit 7"], user="agent", env={"K": "V"}, workdir="/workspace",
                               interactive=False),
        wheel_smolvm.exec_args(name, ["tar", "-x", "-f", "-", "-C", "/"], user="root", env=None, workdir="/",
                               interactive=True),
        wheel_smolvm.exec_args(name, ["claude", "--name", "-u"], user="agent", env={"TERM": "xterm"},
                               workdir="/workspace", interactive=True, tty=True),
    ]
    for args in calls:
        with pytest.raises(SmolvmError) as caught:
            wheel_smolvm.call("exec", args)
        assert caught.value.returncode == 1 and "is not running" in caught.value.detail, args
    with pytest.raises(SmolvmError, match="is not running"):
        handle.exec(["true"])  # the handle's own path, stdin and all
    with pytest.raises(SmolvmError, match="is not running"):
        handle.copy_in(b"", "/tmp")


def test_smolvms_errors_for_unknown_machines(wheel_smolvm):
    with pytest.raises(SmolvmError) as caught:
        wheel_smolvm.stop("bottle-no-such-machine")
    assert caught.value.render() == "smolvm machine stop failed: vm not found: bottle-no-such-machine"
    with pytest.raises(SmolvmError, match="vm not found"):
        wheel_smolvm.delete("bottle-no-such-machine")
    with pytest.raises(SmolvmError) as usage:
        wheel_smolvm.call("create", ["positional-name"])
    assert usage.value.returncode == 2


def test_gc_removes_a_machine_whose_bottle_is_gone(wheel_smolvm, plan, docker_client, tiny_image):
    from bottle_smol import backend

    stream = docker_client.images.get(tiny_image).save(named=True)
    gone = {**labels(plan), "bottle.pid": "0", TEST_LABEL: "1"}
    wheel_smolvm.create(machine_name(plan.slug), labels=gone, image="-", options=create_options(plan),
                        workload=WORKLOAD, stdin=stream)
    assert [b["slug"] for b in backend.list_bottles()] == [plan.slug]
    assert backend.collect_garbage() == [f"microVM {machine_name(plan.slug)}"]
    assert wheel_smolvm.ls() == []


def test_doctor_json_reports_the_engine_and_why_no_guest_boots(smol_doctor):
    """``bottle doctor --json``, the real command: on a PVM host, the engine is there and its guest cannot boot."""
    done = bottle_cli("doctor", "--json", timeout=120)
    (smol,) = [r for r in json.loads(done.stdout) if r["name"] == "smol"]
    checks = {c["name"]: c for c in smol["checks"]}
    assert checks["engine"]["ok"] and smol["engine"]["source"] == "smolmachines"
    assert binary.CHECKED[0] <= binary.parse_version("smolvm " + smol["engine"]["version"]) < binary.CHECKED[1]
    assert smol["boot"]["cached"]  # the session's doctor booted once; the command did not boot again
    assert smol["boot"]["ok"] == smol_doctor["boot"]["ok"]
    if not Path("/sys/module/kvm_pvm").exists():
        pytest.skip("not a PVM host: the PVM report is checked where /sys/module/kvm_pvm exists")
    assert not smol["ok"] and not checks["hypervisor"]["ok"] and "PVM" in checks["hypervisor"]["detail"]
    assert smol["boot"]["ran"] and not smol["boot"]["ok"]
    assert a_failed_boot(smol["boot"]["error"]), smol["boot"]["error"]
    assert smol["reason"].startswith("the hypervisor cannot run smolvm's guest kernel")
    backends = json.loads(bottle_cli("backends", "--json").stdout)
    (listed,) = [r for r in backends if r["name"] == "smol"]
    assert not listed["available"] and "PVM" in listed["reason"]


def test_the_skip_reason_is_a_guest_that_failed_to_boot(smol_doctor):
    """Where the smol cases skip, it is for the true reason: not a package or permission the set-up could grant."""
    if smol_doctor["ok"]:
        pytest.skip("a guest boots here: the smol cases run instead of skipping")
    checks = {c["name"]: c for c in smol_doctor["checks"]}
    for granted_by_setup in ("platform", "engine", "kvm-device"):
        assert checks[granted_by_setup]["ok"], checks[granted_by_setup]["detail"]
    boot = smol_doctor["boot"]
    assert boot["ran"] and not boot["ok"]
    assert a_failed_boot(boot["error"]), boot["error"]
    assert "permission" not in boot["error"].lower() and "not found" not in boot["error"].lower()
    assert "a guest failed to boot" in smol_doctor["reason"]


def test_launch_here_fails_at_boot_and_leaves_nothing(smol_doctor, plan, wheel_smolvm, docker_client):
    """The whole launch for real up to the boot: images, bridge, bundle, agent image, machine; then all removed."""
    from bottle_smol.launch import launch_bottle

    if smol_doctor["ok"]:
        pytest.skip("a guest boots here: the booted tests below cover the launch")
    with pytest.raises(SmolvmError) as failed:
        with launch_bottle(plan):
            pytest.fail("no guest boots here, so launch must not yield")
    assert failed.value.verb == "start" and a_failed_boot(failed.value.detail), str(failed.value)
    assert resources_of("bottle.slug", plan.slug) == ([], [])
    assert wheel_smolvm.ls() == []


def a_failed_boot(error: str) -> bool:
    """The engine's own boot failure, or the bound on a boot running out: on a busy host the same
    failing guest may not answer before the bound, and either way no guest booted.
    """
    return error.startswith("agent operation failed: start machine:") or re.fullmatch(
        r"no answer within \d+ s", error) is not None


# -- needs a booted guest ---------------------------------------------------------------------------------------


@pytest.fixture
def booted(smol_doctor, wheel_smolvm, plan, docker_client, monkeypatch):
    """A running microVM of debian:bookworm-slim (it has sh and tar), removed afterwards."""
    if not smol_doctor["ok"]:
        pytest.skip(f"smol: bottle doctor: {smol_doctor['reason']}")
    stream = docker_client.images.get("debian:bookworm-slim").save(named=True)
    with running_machine(wheel_smolvm, plan, stream, start_timeout=120) as machine:
        yield SmolBottle(plan, wheel_smolvm, machine)
    assert wheel_smolvm.ls() == []


def test_booted_exec_passes_exit_codes_and_stdin(booted):
    assert booted.exec(["sh", "-c", "exit 7"], user="root", workdir="/").returncode == 7
    result = booted.exec(["cat"], user="root", workdir="/", stdin=b"through stdin")
    assert result.stdout == b"through stdin"
    assert booted.exec(["sh", "-c", "echo $FOO"], user="root", workdir="/").stdout == b"bar\n"


def test_booted_copy_in_and_out(booted):
    booted.check(["mkdir", "-p", "/srv/in"], user="root", workdir="/")
    booted.write_files("/srv/in", {"note.txt": b"hi"}, owner=0)
    with tarfile.open(fileobj=io.BytesIO(booted.copy_out("/srv/in/note.txt"))) as tar:
        assert tar.extractfile("note.txt").read() == b"hi"
