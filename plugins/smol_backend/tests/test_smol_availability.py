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


def test_availability_names_the_fix(fake_smolvm, monkeypatch):
    monkeypatch.setattr(avail, "kvm_problem", lambda: None)
    monkeypatch.setattr(avail, "platform_problem", lambda: None)
    assert avail.host_problem() is None
    monkeypatch.setenv("FAKE_SMOLVM_VERSION", "1.5.0")
    binary._version.cache_clear()
    assert "smolvm 1.5.0" in avail.host_problem() and "pip install -U smolmachines" in avail.host_problem()
    monkeypatch.setattr(binary, "find", lambda: (_ for _ in ()).throw(binary.SmolvmNotFound(
        "no smolvm binary found", hint="pip install bottle-smol")))
    monkeypatch.setattr(avail, "find", binary.find)
    assert avail.host_problem() == "no smolvm binary found (pip install bottle-smol)"


def test_smol_is_not_available_while_it_cannot_launch_and_says_all_it_lacks(fake_smolvm, monkeypatch):
    monkeypatch.setattr(avail, "kvm_problem", lambda: None)
    monkeypatch.setattr(avail, "platform_problem", lambda: None)
    assert avail.availability() == avail.MISSING  # a fine host: only the missing bundle
    assert "cannot launch a bottle" in avail.MISSING and "--backend docker" in avail.MISSING
    monkeypatch.setattr(avail, "kvm_problem", lambda: "no /dev/kvm")
    assert avail.availability() == f"no /dev/kvm; {avail.MISSING}"


def test_availability_reports_a_binary_without_version(fake_smolvm, monkeypatch):
    monkeypatch.setattr(avail, "platform_problem", lambda: None)
    fake_smolvm.path.write_text("#!/bin/sh\necho 'something else'\n")
    assert "did not report a version" in avail.host_problem()


def test_platforms():
    assert avail.platform_problem("linux", "x86_64") is None
    assert avail.platform_problem("darwin", "arm64") is None
    assert "unsupported platform darwin/x86_64" in avail.platform_problem("darwin", "x86_64")
    assert "unsupported platform win32" in avail.platform_problem("win32", "AMD64")


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
    assert "mode 0600" in problem and "chmod 0666 /dev/kvm" in problem and "group" in problem
    monkeypatch.setattr(avail.os, "stat", stat_with_mode(0o660))
    assert "mode 0660" in avail.kvm_problem("/dev/kvm")


def test_backend_module_imports_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, bottle_smol.backend as b; b.backend_availability(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'smol', 'requests')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
