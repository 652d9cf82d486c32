"""The smol backend against a recording fake smolvm: argv shapes, exit codes, errors, cleanup."""

from __future__ import annotations

import base64
import io
import ipaddress
import tarfile

import pytest

from bottle_core import addressing, agent
from bottle_core.errors import BottleRuntimeError
from bottle_core.manifest import Manifest
from bottle_core.sandbox import Bundle
from bottle_core.spec import BottleSpec
from bottle_smol import binary, images, network
from bottle_smol.binary import find
from bottle_smol.engine import Engine, SmolvmError
from bottle_smol.machine import machine_name, running_machine
from bottle_smol.prepare import prepare_plan
from bottle_smol.sandbox import SmolBottle


IMAGE = b"a docker save stream, as far as the fake cares"


@pytest.fixture
def plan(manifest_factory, tmp_path, monkeypatch, fake_smolvm):
    monkeypatch.setattr(network, "engine_networks", lambda: [])
    monkeypatch.setattr(images, "base_image_id", lambda base: "sha256:" + "b" * 64)
    monkeypatch.setenv("BOTTLE_CLAUDE_BINARY", str(small_claude(tmp_path)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    manifest = Manifest.load(manifest_factory({
        "bottles": {"dev": {"cpus": 1.5, "memory": "1g", "env": {"FOO": "bar"}}},
        "agents": {"demo": {"prompt": "hi", "bottle": "dev"}},
    }))
    return prepare_plan(BottleSpec(manifest, "demo", cwd=tmp_path), tmp_path / "state")


def small_claude(folder):
    binary = folder / "claude"
    binary.write_bytes(b"#!/bin/sh\necho 2.0.0\n")
    binary.chmod(0o755)
    return binary


@pytest.fixture
def engine(fake_smolvm):
    return Engine(find())


def _verbs(fake):
    return [argv[1] for argv in fake.argvs()]


def test_prepare_pins_the_bundle_in_a_free_pool_subnet(plan, fake_smolvm):
    subnet = ipaddress.ip_network(plan.network.subnet)
    assert subnet.subnet_of(addressing.POOL) and subnet.prefixlen == 24
    assert plan.network.bundle_ip == str(subnet.network_address + 2)
    assert plan.proxy.listen_host == plan.network.bundle_ip
    assert plan.backend == "smol"
    assert plan.backend_options["machine"] == f"bottle-{plan.slug}"
    assert plan.backend_options["smolvm_version"] == "1.32.2"
    assert (plan.backend_options["cpus"], plan.backend_options["mem_mib"]) == (2, 1024)
    assert fake_smolvm.calls() == []  # prepare starts nothing


def test_limits_a_microvm_does_not_apply_as_written_are_warned_about(capsys, plan):
    err = capsys.readouterr().err
    assert "bottle: warning: bottles.dev.cpus: applied as 2 whole vCPUs on the smol backend" in err
    assert "pids" not in err  # the manifest leaves pids at its default: nothing asked goes unapplied


def test_machine_names_follow_smolvm_rules():
    assert machine_name("demo-0a1b2c") == "bottle-demo-0a1b2c"
    assert machine_name("we.ird--name-") == "bottle-we-ird-name"


def test_lifecycle_argv_contract(plan, engine, fake_smolvm):
    name = f"bottle-{plan.slug}"
    bundle = plan.network.bundle_ip
    with running_machine(engine, plan, IMAGE) as machine:
        assert machine == name
        assert fake_smolvm.machines()[name]["state"] == "running"
    create, start, status, stop, delete = fake_smolvm.calls()

    argv = create["argv"]
    assert argv[:4] == ["machine", "create", "--name", name]
    assert argv[argv.index("--"):] == ["--", "sleep", "infinity"]
    options = argv[:argv.index("--")]
    assert ["--image", "-"] == options[options.index("--image"):options.index("--image") + 2]
    assert f"bottle.slug={plan.slug}" in options and options[options.index(f"bottle.slug={plan.slug}") - 1] == "--label"
    pairs = list(zip(options, options[1:]))
    for pair in [("--allow-cidr", f"{bundle}/32"), ("--dns", bundle), ("--cpus", "2"), ("--mem", "1024"),
                 ("-e", f"HTTPS_PROXY=http://{bundle}:8080"), ("-e", f"NO_PROXY=localhost,127.0.0.1,{bundle}"), ("-e", "FOO=bar")]:
        assert pair in pairs
    assert "--net" not in options and "--net-backend" not in options  # the policy implies virtio-net
    assert create["stdin_bytes"] == len(IMAGE)
    assert base64.b64decode(create["stdin_head"]) == IMAGE[:64]

    assert start["argv"] == ["machine", "start", "--name", name]
    assert status["argv"] == ["machine", "status", "--name", name, "--json"]
    assert stop["argv"] == ["machine", "stop", "--name", name]
    assert delete["argv"] == ["machine", "delete", "--name", name, "-f"]
    assert fake_smolvm.machines() == {}


def test_machine_is_removed_when_the_body_raises(plan, engine, fake_smolvm):
    with pytest.raises(KeyboardInterrupt):
        with running_machine(engine, plan, IMAGE):
            raise KeyboardInterrupt
    assert _verbs(fake_smolvm)[-2:] == ["stop", "delete"]
    assert fake_smolvm.machines() == {}


def test_failed_start_reports_smolvms_error_and_removes_the_machine(plan, engine, fake_smolvm, monkeypatch):
    monkeypatch.setenv("FAKE_SMOLVM_START_ERROR", "kvm permission denied: Cannot access /dev/kvm")
    with pytest.raises(SmolvmError) as caught:
        with running_machine(engine, plan, IMAGE):
            pytest.fail("the body must not run")
    assert caught.value.render() == ("smolvm machine start failed: agent operation failed: start machine: "
                                     "kvm permission denied: Cannot access /dev/kvm")
    assert _verbs(fake_smolvm) == ["create", "start", "stop", "delete"]
    assert fake_smolvm.machines() == {}


def test_a_name_already_taken_is_not_deleted(plan, engine, fake_smolvm):
    engine.create(f"bottle-{plan.slug}", labels={"owner": "someone-else"}, image="-", options=[], workload=[],
                  stdin=b"")
    with pytest.raises(SmolvmError, match="already exists"):
        with running_machine(engine, plan, IMAGE):
            pass
    assert _verbs(fake_smolvm) == ["create", "create"]
    assert fake_smolvm.machines()[f"bottle-{plan.slug}"]["labels"] == {"owner": "someone-else"}


@pytest.fixture
def bottle(plan, engine, fake_smolvm):
    with running_machine(engine, plan, IMAGE) as machine:
        yield SmolBottle(plan, engine, machine)


def _exec_calls(fake):
    return [call for call in fake.calls() if call["argv"][1] == "exec"]


def test_exec_argv_puts_every_option_before_the_double_dash(bottle, fake_smolvm):
    result = bottle.exec(["echo", "--name", "-u", "x"], env={"K": "V"}, workdir="/tmp")
    assert result.ok and result.stdout == b"--name -u x\n"
    (call,) = _exec_calls(fake_smolvm)
    assert call["argv"] == ["machine", "exec", "--name", bottle.machine, "-u", "agent", "-w", "/tmp", "-e", "K=V",
                            "--", "echo", "--name", "-u", "x"]
    assert "-i" not in call["argv"]


def test_exec_defaults_to_agent_user_and_workspace_and_uses_sh_for_strings(bottle, fake_smolvm):
    bottle.exec("true")
    (call,) = _exec_calls(fake_smolvm)
    assert call["argv"][4:] == ["-u", "agent", "-w", "/workspace", "--", "sh", "-c", "true"]


def test_exec_passes_stdin_with_dash_i(bottle, fake_smolvm):
    result = bottle.exec(["cat"], stdin=b"hello")
    assert result.stdout == b"hello"
    (call,) = _exec_calls(fake_smolvm)
    assert "-i" in call["argv"][:call["argv"].index("--")]
    assert call["stdin_bytes"] == 5


def test_guest_exit_codes_and_guest_error_lines_pass_through(bottle):
    assert bottle.exec(["sh", "-c", "exit 7"]).returncode == 7
    # A guest that prints its own "Error:" line is the guest's failure, not smolvm's.
    result = bottle.exec(["sh", "-c", "echo 'Error: my tool broke' >&2; exit 1"])
    assert (result.returncode, result.stderr) == (1, b"Error: my tool broke\n")


def test_the_stray_note_line_is_dropped_from_stderr(bottle):
    assert bottle.exec(["sh", "-c", "echo out; echo err >&2"]).stderr == b"err\n"


def test_smolvm_failures_in_exec_raise(bottle, engine, fake_smolvm):
    with pytest.raises(SmolvmError, match="failed to spawn command"):
        bottle.exec(["no-such-command-anywhere"])
    engine.stop(bottle.machine)
    with pytest.raises(SmolvmError, match="is not running"):
        bottle.exec(["true"])


def test_copy_in_and_out_are_tar_through_exec(bottle, fake_smolvm, tmp_path):
    dest = tmp_path / "guest-dir"
    dest.mkdir()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    bottle.copy_in(buffer.getvalue(), str(dest))
    assert (dest / "hello.txt").read_bytes() == b"hello"
    copy_in = _exec_calls(fake_smolvm)[0]["argv"]
    # As root, with the system's PATH whatever the manifest's env says (bottle_core.agent.root_environment).
    assert copy_in[4:8] == ["-u", "root", "-w", "/"] and f"PATH={agent.SYSTEM_PATH}" in copy_in
    assert copy_in[copy_in.index("-i"):] == ["-i", "--", "tar", "-x", "-p", "-f", "-", "-C", str(dest)]

    with tarfile.open(fileobj=io.BytesIO(bottle.copy_out(str(dest / "hello.txt")))) as tar:
        assert tar.getnames() == ["hello.txt"]
        assert tar.extractfile("hello.txt").read() == b"hello"
    copy_out = _exec_calls(fake_smolvm)[1]["argv"]
    assert copy_out[copy_out.index("--"):] == ["--", "tar", "-c", "-f", "-", "-C", str(dest), "hello.txt"]


def test_copy_out_of_a_missing_path_says_so(bottle):
    with pytest.raises(BottleRuntimeError, match="copy of /no/such/path out of bottle"):
        bottle.copy_out("/no/such/path")


def test_usage_errors_from_clap_raise(engine):
    with pytest.raises(SmolvmError, match="error: the following required arguments were not provided") as caught:
        engine.call("exec", ["--name", "x"])  # no command after the options
    assert caught.value.returncode == 2


def test_ls_stop_and_gc_find_machines_by_label(plan, engine, fake_smolvm):
    from bottle_smol import backend

    engine.create("someone-elses", labels={"owner": "x"}, image="-", options=[], workload=[], stdin=b"")
    engine.create("bottle-dead-owner", labels={"bottle.slug": "dead", "bottle.agent": "a", "bottle.pid": "0"},
                  image="-", options=[], workload=[], stdin=b"")
    with running_machine(engine, plan, IMAGE):
        listed = backend.list_bottles()
        assert sorted(b["slug"] for b in listed) == sorted(["dead", plan.slug])
        assert {b["backend"] for b in listed} == {"smol"}
        assert backend.collect_garbage() == ["microVM bottle-dead-owner"]  # our own process is alive
        assert backend.stop_bottle(slug=plan.slug) is True
        assert backend.stop_bottle(slug=plan.slug) is False
    assert list(fake_smolvm.machines()) == ["someone-elses"]


def test_the_plan_names_the_images_by_content_as_every_backend_does(plan):
    from bottle_core.images import image_names

    assert plan.images == image_names("debian:bookworm-slim", "sha256:" + "b" * 64)
    assert plan.images["agent"].startswith("bottle-agent:") and not plan.images["agent"].endswith(":latest")


def test_preparing_a_plan_writes_nothing(plan, tmp_path):
    assert not (tmp_path / "state").exists()
    assert plan.network.name == f"bottle-{plan.slug}" and plan.backend_options["machine"] == f"bottle-{plan.slug}"


# -- launch: the docker backend's bundle, then the microVM, removed in reverse -----------------------------------


class _Recorder:
    """Stands in for bottle-docker's sidecar module (the smol launch's only Docker side) and writes down what
    was asked, in order."""

    def __init__(self, monkeypatch, tmp_path):
        from bottle_docker import sidecar
        from bottle_smol import launch

        self.events: list[tuple] = []
        self.client = object()
        self.bundle = FakeBundle("bundle-id")
        image = tmp_path / "agent.tar"
        image.write_bytes(IMAGE)
        self.image = image
        recorder = self

        class Sidecar:
            def __init__(self, plan, *, host_address=False):
                recorder.events.append(("sidecar", plan.network.name, host_address))

            def create(self, secrets):
                recorder.events.append(("create", secrets))
                return recorder.plan_used

            def start(self):
                recorder.events.append(("start",))
                return recorder.bundle

            def remove(self, *, also=()):
                recorder.events.append(("remove", list(also)))

        monkeypatch.setattr(sidecar, "client", lambda: self.client)
        monkeypatch.setattr(sidecar, "ensure_images", lambda images: self.events.append(("images",)))
        monkeypatch.setattr(sidecar, "Sidecar", Sidecar)
        monkeypatch.setattr(launch, "exported_image", lambda client, name: self.events.append(("export", name)) or image)
        self.plan_used = None

    def names(self) -> list[str]:
        return [event[0] for event in self.events]


class FakeBundle(Bundle):
    """A core Bundle handle that answers from memory."""

    def wait_ready(self):
        pass

    def ca_certificate(self):
        return b"PEM"

    def exec(self, argv, *, user="bundle"):
        raise AssertionError("no command expected in the bundle")

    def output(self):
        return []

    def stop(self):
        pass


@pytest.fixture
def docker_side(monkeypatch, tmp_path, plan):
    recorder = _Recorder(monkeypatch, tmp_path)
    recorder.plan_used = plan
    return recorder


def test_launch_brings_up_the_contracts_bundle_then_the_microvm_and_removes_both(plan, fake_smolvm, docker_side):
    from bottle_core.bundle import contract
    from bottle_smol.launch import launch_bottle

    with launch_bottle(plan) as bottle:
        assert bottle.machine == f"bottle-{plan.slug}" and bottle.bundle is docker_side.bundle
        assert fake_smolvm.machines()[bottle.machine]["state"] == "running"
        assert docker_side.names() == ["images", "export", "sidecar", "create", "start"]
    # The host keeps its address on this bridge; the bundle gets the contract's secrets table.
    assert docker_side.events[2] == ("sidecar", plan.network.name, True)
    assert docker_side.events[3] == ("create", contract.secret_table(plan))
    create = next(argv for argv in fake_smolvm.argvs() if argv[1] == "create")
    assert create[create.index("--image") + 1] == str(docker_side.image)  # the export, not a registry pull
    assert ("--allow-cidr", f"{plan.network.bundle_ip}/32") in set(zip(create, create[1:]))
    # Reverse order on the way out: the microVM, then the bundle (its last lines filed) and its bridge.
    assert [argv[1] for argv in fake_smolvm.argvs()][-2:] == ["stop", "delete"]
    assert docker_side.events[-1] == ("remove", [])
    assert fake_smolvm.machines() == {}


def test_a_failed_boot_removes_the_machine_the_bundle_and_the_bridge(plan, fake_smolvm, docker_side, monkeypatch):
    from bottle_smol.launch import launch_bottle

    monkeypatch.setenv("FAKE_SMOLVM_START_ERROR", "agent operation failed: monitor agent: KVM_EXIT_INTERNAL_ERROR")
    with pytest.raises(SmolvmError, match="KVM_EXIT_INTERNAL_ERROR"):
        with launch_bottle(plan):
            pytest.fail("launch must not yield")
    assert fake_smolvm.machines() == {}
    assert docker_side.events[-1] == ("remove", [])


def test_an_unchecked_smolvm_is_refused_before_anything_exists(plan, fake_smolvm, docker_side, monkeypatch):
    from bottle_smol.launch import launch_bottle

    monkeypatch.setenv("FAKE_SMOLVM_VERSION", "1.40.1")
    binary._version.cache_clear()
    with pytest.raises(BottleRuntimeError, match="smolvm 1.40.1 .* is not a version this backend was checked against"):
        with launch_bottle(plan):
            pytest.fail("launch must not yield")
    assert fake_smolvm.argvs() == [] and docker_side.names() == []


def test_core_provision_ca_reaches_the_microvm_through_its_handles(bottle, monkeypatch):
    """The CA comes from the bundle handle and goes in through the microVM's: core's provisioning, no backend's."""
    from bottle_core import provision

    bottle.bundle = FakeBundle("bundle-id")
    written, ran = {}, []
    # Recorded, not run: the fake smolvm runs exec'd commands on this host.
    monkeypatch.setattr(bottle, "write_files", lambda folder, files, **kw: written.update({folder: (files, kw)}))
    monkeypatch.setattr(bottle, "check", lambda command, **kw: ran.append((command, kw)))
    provision.provision_ca(plan=bottle.plan, bottle=bottle)
    assert written == {"/usr/local/share/ca-certificates": ({"bottle-ca.crt": b"PEM"}, {"mode": 0o644, "owner": 0})}
    ((command, options),) = ran
    assert options == {"user": "0"} and "/etc/ssl/certs/ca-certificates.crt" in command[-1]


def test_ls_and_gc_work_where_smol_cannot_launch(fake_smolvm, monkeypatch, tmp_path):
    """A machine left behind must be removable on a host that cannot boot one (ls and gc need no availability)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    engine = Engine(find())
    engine.create("bottle-left-0a1b2c", labels={"bottle.slug": "left-0a1b2c", "bottle.agent": "left",
                                                "bottle.pid": "0"}, image="-", options=[], workload=[], stdin=b"")
    monkeypatch.setenv("FAKE_SMOLVM_VERSION", "1.40.0")  # unavailable: not a checked version
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    bottle_cli = str(Path(sys.executable).with_name("bottle"))
    backends = json.loads(subprocess.run([bottle_cli, "backends", "--json"], capture_output=True, check=True,
                                         timeout=60).stdout)
    assert not next(b for b in backends if b["name"] == "smol")["available"]
    listed = subprocess.run([bottle_cli, "--backend", "smol", "ls", "--json"], capture_output=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [row["slug"] for row in json.loads(listed.stdout)] == ["left-0a1b2c"]
    collected = subprocess.run([bottle_cli, "--backend", "smol", "gc", "--json"], capture_output=True, timeout=60)
    assert collected.returncode == 0, collected.stderr
    assert "microVM bottle-left-0a1b2c" in json.loads(collected.stdout)
    assert fake_smolvm.machines() == {}


def test_the_plan_refuses_the_egress_stage_the_engines_networks_and_the_hosts_address_on_its_bridge(plan):
    subnet = ipaddress.ip_network(plan.network.subnet)
    assert plan.network.subnet in plan.egress.refused_networks and "10.0.0.0/8" in plan.egress.refused_networks
    assert str(subnet.network_address + 1) in plan.egress.host_addresses  # smolvm's side of the bridge


def test_approvals_reach_the_bundle_beside_the_microvm(monkeypatch):
    """`bottle pending/approve/deny` on smol: the supervisor's control client runs in the bundle container."""
    from bottle_core.sandbox import ExecResult
    from bottle_docker import sidecar
    from bottle_smol import backend

    asked = []
    monkeypatch.setattr(sidecar, "exec_in_running_bundle",
                        lambda slug, argv: asked.append((slug, list(argv))) or ExecResult(0, b"[]", b""))
    result = backend.exec_in_bundle(slug="demo-abc123", argv=["python3", "-m", "x", "pending"])
    assert result.stdout == b"[]" and asked == [("demo-abc123", ["python3", "-m", "x", "pending"])]
