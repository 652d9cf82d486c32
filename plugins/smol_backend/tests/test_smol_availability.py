"""Finding smolvm, reading its version, and the availability line the user sees."""

from __future__ import annotations

import os
import types

import pytest

from bottle_smol import availability as avail
from bottle_smol import binary



@pytest.fixture(autouse=True)
def _fresh_version_cache():
    binary._version.cache_clear()
    yield
    binary._version.cache_clear()


def test_parse_version():
    assert binary.parse_version("smolvm 1.32.2\n") == (1, 32, 2)
    assert binary.parse_version("note: x\nsmolvm 1.9.3") == (1, 9, 3)
    assert binary.parse_version("smolvm-rollout 1.2.3") is None
    assert binary.parse_version("") is None


def test_bottle_smolvm_wins_and_is_checked(fake_smolvm, monkeypatch, tmp_path):
    found = binary.find()
    assert (found.path, found.source) == (str(fake_smolvm.path), "BOTTLE_SMOLVM")
    assert binary.version_of(found) == (1, 32, 2)
    monkeypatch.setenv("BOTTLE_SMOLVM", str(tmp_path / "nothing-here"))
    with pytest.raises(binary.SmolvmNotFound, match="is not an executable file"):
        binary.find()


def test_path_then_the_wheel(monkeypatch, tmp_path, fake_smolvm):
    monkeypatch.delenv("BOTTLE_SMOLVM")
    monkeypatch.setenv("PATH", str(fake_smolvm.path.parent))
    assert binary.find().source == "PATH"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    wheel = tmp_path / "site" / "smol"
    wheel.mkdir(parents=True)
    (wheel / "smol-vmm").write_text("")
    monkeypatch.setattr(binary.importlib.util, "find_spec",
                        lambda name: types.SimpleNamespace(submodule_search_locations=[str(wheel)]))
    found = binary.find()
    assert (found.path, found.source) == (str(wheel / "smol-vmm"), "smolmachines")
    assert found.child_env()["SMOLVM_LIB_DIR"] == str(wheel)
    monkeypatch.setattr(binary.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(binary.SmolvmNotFound) as caught:
        binary.find()
    assert "pip install bottle-smol" in caught.value.render() and "BOTTLE_SMOLVM" in caught.value.render()


def test_child_env_drops_what_would_bend_the_policy(monkeypatch):
    for key in ("HTTPS_PROXY", "http_proxy", "NO_PROXY", "SMOLVM_MACHINE_NAME", "SMOLVM_PUBLISH_ADDR",
                "SMOLVM_EGRESS_FLOOR", "SMOLVM_EGRESS_ALLOW_PRIVATE"):
        monkeypatch.setenv(key, "x")
    monkeypatch.setenv("KEEP_ME", "1")
    env = binary.Smolvm("/x", "PATH").child_env()
    assert env["KEEP_ME"] == "1"
    assert not {k for k in env if "proxy" in k.lower() or k.startswith("SMOLVM_")}


@pytest.fixture
def fine_host(monkeypatch, fake_smolvm, tmp_path):
    """A host every cheap check passes on: fake smolvm, hardware KVM modules, an open /dev/kvm, a fresh cache."""
    modules = tmp_path / "module"
    (modules / "kvm_intel").mkdir(parents=True)
    monkeypatch.setattr(avail, "MODULES", modules)
    monkeypatch.setattr(avail, "platform_problem", lambda: None)
    monkeypatch.setattr(avail, "kvm_problem", lambda: None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return modules


def test_a_fine_host_is_available(fine_host):
    assert avail.host_problems() == []
    assert avail.availability() is None


def test_unchecked_smolvm_versions_are_refused_with_the_fix(fine_host, monkeypatch):
    for version in ("1.31.9", "1.33.0", "2.0.0"):
        monkeypatch.setenv("FAKE_SMOLVM_VERSION", version)
        binary._version.cache_clear()
        problem = avail.availability()
        assert f"smolvm {version}" in problem and "not a version this backend was checked against" in problem
        assert "pip install 'smolmachines>=1.32.0,<1.33.0'" in problem and "BOTTLE_SMOLVM" in problem


def test_no_engine_says_how_to_get_one(fine_host, monkeypatch):
    monkeypatch.setattr(avail, "find", lambda: (_ for _ in ()).throw(binary.SmolvmNotFound(
        "no smolvm binary found", hint="pip install bottle-smol")))
    assert avail.availability() == "no smolvm binary found (pip install bottle-smol)"


def test_pvm_and_emulated_kvm_are_told_apart(tmp_path):
    modules = tmp_path / "module"
    modules.mkdir()
    assert "neither kvm_intel nor kvm_amd" in avail.hypervisor_problem(modules)
    (modules / "kvm_amd").mkdir()
    assert avail.hypervisor_problem(modules) is None
    (modules / "kvm_pvm").mkdir()
    problem = avail.hypervisor_problem(modules)
    assert "PVM (module kvm_pvm" in problem and "cannot run smolvm's guest kernel" in problem
    assert "nested" in problem and "docker backend" in problem


def test_every_problem_is_listed_in_the_order_it_is_fixed(fine_host, monkeypatch):
    (fine_host / "kvm_intel").rmdir()
    monkeypatch.setattr(avail, "kvm_problem", lambda: "/dev/kvm has mode 0600")
    assert [name for name, _ in avail.host_problems()] == ["kvm-device", "hypervisor"]
    assert avail.availability().startswith("/dev/kvm has mode 0600; no hardware KVM")


def test_availability_reports_a_binary_without_version(fine_host, fake_smolvm):
    fake_smolvm.path.write_text("#!/bin/sh\necho 'something else'\n")
    assert "did not report a version" in avail.availability()


def test_platforms():
    glibc = ("glibc", "2.36")
    assert avail.platform_problem("linux", "x86_64", glibc) is None
    assert avail.platform_problem("darwin", "arm64") is None
    assert "unsupported platform darwin/x86_64" in avail.platform_problem("darwin", "x86_64")
    assert "unsupported platform win32" in avail.platform_problem("win32", "AMD64")
    assert "glibc 2.28 is older than 2.30" in avail.platform_problem("linux", "x86_64", ("glibc", "2.28"))
    assert avail.platform_problem("linux", "x86_64", ("glibc", "2.30")) is None
    assert "unsupported C library (not glibc)" in avail.platform_problem("linux", "aarch64", ("", ""))


def test_kvm_checks(monkeypatch, tmp_path):
    assert "no " + str(tmp_path / "kvm") in avail.kvm_problem(str(tmp_path / "kvm"))
    (tmp_path / "file").write_text("")
    assert "not a character device" in avail.kvm_problem(str(tmp_path / "file"))
    assert avail.kvm_problem("/dev/null") is None  # a character device open to everyone

    real_stat = os.stat

    def stat_with_mode(mode):
        def fake(path, *args, **kwargs):
            result = list(real_stat("/dev/null"))
            result[0] = (result[0] & ~0o7777) | mode
            return os.stat_result(result)
        return fake

    monkeypatch.setattr(avail.os, "stat", stat_with_mode(0o600))
    problem = avail.kvm_problem("/dev/kvm")
    assert "mode 0600" in problem and "sudo chmod 0666 /dev/kvm" in problem and "udev rule" in problem
    monkeypatch.setattr(avail.os, "stat", stat_with_mode(0o660))
    assert "mode 0660" in avail.kvm_problem("/dev/kvm")


def test_backend_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, bottle_smol.backend as b; b.backend_availability(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'smol', 'requests')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


# -- bottle doctor: the throwaway boot and its cache ------------------------------------------------------------


def _starts(fake):
    return [argv for argv in fake.argvs() if argv[1] == "start"]


def test_doctor_boots_once_and_caches_the_answer_until_the_host_changes(fine_host, fake_smolvm):
    from bottle_smol import doctor

    report = doctor.diagnose()
    assert report["ok"] and report["reason"] is None
    assert report["boot"]["ran"] and not report["boot"]["cached"] and report["boot"]["ok"]
    verbs = [argv[1] for argv in fake_smolvm.argvs()]
    assert verbs == ["create", "start", "exec", "delete"]
    create = fake_smolvm.argvs()[0]
    assert create[create.index("--state-dir") + 1].startswith("/tmp/smol-doctor-")  # never the user's machines
    assert ["--cpus", "1", "--mem", "256"] == create[-4:]
    assert fake_smolvm.machines() == {}

    again = doctor.diagnose()
    assert again["boot"]["cached"] and again["ok"]
    assert len(_starts(fake_smolvm)) == 1  # no second boot

    (fine_host / "kvm_amd").mkdir()  # the host changed: ask again
    assert not doctor.diagnose()["boot"]["cached"]
    assert len(_starts(fake_smolvm)) == 2
    assert doctor.diagnose(refresh=True)["boot"]["cached"] is False
    assert len(_starts(fake_smolvm)) == 3


def test_doctor_reports_the_engines_own_boot_error_and_availability_remembers_it(fine_host, fake_smolvm,
                                                                                 monkeypatch):
    from bottle_smol import doctor

    monkeypatch.setenv("FAKE_SMOLVM_START_ERROR", "agent operation failed: monitor agent: Received "
                                                  "KVM_EXIT_INTERNAL_ERROR signal (boot process exited (code 1))")
    report = doctor.diagnose()
    assert not report["ok"]
    assert report["boot"]["error"].endswith("KVM_EXIT_INTERNAL_ERROR signal (boot process exited (code 1))")
    assert report["reason"].startswith("a guest failed to boot (throwaway boot, ")
    assert {c["name"]: c["ok"] for c in report["checks"]} == {
        "platform": True, "engine": True, "kvm-device": True, "hypervisor": True, "boot": False}
    assert fake_smolvm.machines() == {}  # deleted after the failed boot
    # bottle backends boots nothing, but knows the answer for this engine and host.
    assert "a throwaway microVM did not boot here (bottle doctor)" in doctor.availability()
    assert avail.availability() is None  # the cheap checks alone pass
    assert len(_starts(fake_smolvm)) == 1


def test_doctor_does_not_boot_what_smolvm_would_refuse(fine_host, fake_smolvm, monkeypatch):
    from bottle_smol import doctor

    monkeypatch.setenv("FAKE_SMOLVM_VERSION", "1.40.0")
    binary._version.cache_clear()
    report = doctor.diagnose()
    assert not report["ok"] and not report["boot"]["ran"]
    assert "not a version this backend was checked against" in report["reason"]
    assert fake_smolvm.argvs() == []


def test_doctor_on_pvm_boots_anyway_to_report_the_engines_words(fine_host, fake_smolvm, monkeypatch):
    from bottle_smol import doctor

    (fine_host / "kvm_pvm").mkdir()
    monkeypatch.setenv("FAKE_SMOLVM_START_ERROR", "agent operation failed: monitor agent: KVM_EXIT_INTERNAL_ERROR")
    report = doctor.diagnose()
    assert report["boot"]["ran"] and not report["boot"]["ok"]
    assert report["reason"].startswith("the hypervisor cannot run smolvm's guest kernel: /dev/kvm here is PVM")
    assert "a guest failed to boot" in report["reason"] and "KVM_EXIT_INTERNAL_ERROR" in report["reason"]
