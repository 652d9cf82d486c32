"""The smol backend against the real smolvm shipped in the smolmachines wheel.

What runs everywhere smolvm installs: version detection, availability,
``machine create`` with the backend's exact flags (the agent image piped from
the Docker engine), reading the machine back from ``ls --json``, smolvm's own
error texts, and ``delete -f``. Nothing here boots a VM.

What needs a booted guest (start, exec, copy in/out) is opt-in with
``BOTTLE_SMOL_BOOT_TESTS=1``, for hosts where a hypervisor boots smolvm's
guest kernel.

Every smolvm call uses a throwaway ``--state-dir`` so a user's own machines
are never seen or touched.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
import uuid

import pytest

from bottle_core.errors import BottleRuntimeError
from bottle_core.manifest import Manifest
from bottle_core.spec import BottleSpec
from bottle_smol import binary
from bottle_smol.availability import host_problem, kvm_problem
from bottle_smol.engine import Engine, SmolvmError
from bottle_smol.machine import WORKLOAD, create_options, labels, machine_name, running_machine
from bottle_smol.prepare import prepare_plan
from bottle_smol.sandbox import SmolBottle

pytestmark = pytest.mark.integration

TEST_LABEL = "bottle.test"
BOOT_SKIP = (
    "needs a booted smolvm guest; set BOTTLE_SMOL_BOOT_TESTS=1 where a hypervisor boots one. Not run where the "
    "host is itself a VM with nested KVM: smolvm's guest kernel stops with KVM_EXIT_INTERNAL_ERROR or makes no "
    "boot progress in 30 s there"
)
needs_boot = pytest.mark.skipif(os.environ.get("BOTTLE_SMOL_BOOT_TESTS") != "1", reason=BOOT_SKIP)


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


def test_the_wheel_binary_reports_its_version(wheel_smolvm):
    assert wheel_smolvm.version >= binary.MIN_VERSION
    assert wheel_smolvm.exec_has_user == (wheel_smolvm.version >= binary.EXEC_USER_SINCE)


def test_the_host_check_with_the_real_binary_only_depends_on_kvm(wheel_smolvm):
    assert host_problem() == kvm_problem()


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


def test_launch_refuses_until_the_bundle_exists(wheel_smolvm, plan):
    from bottle_smol import backend

    with pytest.raises(BottleRuntimeError, match="bundle .* is not implemented"):
        with backend.launch(plan=plan):
            pytest.fail("launch must not yield")
    assert wheel_smolvm.ls() == []


# -- needs a booted guest ---------------------------------------------------------------------------------------


@pytest.fixture
def booted(wheel_smolvm, plan, docker_client, monkeypatch):
    """A running microVM of debian:bookworm-slim (it has sh and tar), removed afterwards."""
    stream = docker_client.images.get("debian:bookworm-slim").save(named=True)
    with running_machine(wheel_smolvm, plan, stream, start_timeout=120) as machine:
        yield SmolBottle(plan, wheel_smolvm, machine)
    assert wheel_smolvm.ls() == []


@needs_boot
def test_booted_exec_passes_exit_codes_and_stdin(booted):
    assert booted.exec(["sh", "-c", "exit 7"], user="root", workdir="/").returncode == 7
    result = booted.exec(["cat"], user="root", workdir="/", stdin=b"through stdin")
    assert result.stdout == b"through stdin"
    assert booted.exec(["sh", "-c", "echo $FOO"], user="root", workdir="/").stdout == b"bar\n"


@needs_boot
def test_booted_copy_in_and_out(booted):
    booted.check(["mkdir", "-p", "/srv/in"], user="root", workdir="/")
    booted.write_files("/srv/in", {"note.txt": b"hi"}, owner=0)
    with tarfile.open(fileobj=io.BytesIO(booted.copy_out("/srv/in/note.txt"))) as tar:
        assert tar.extractfile("note.txt").read() == b"hi"
