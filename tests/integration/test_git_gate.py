"""The agent's work comes home through the git gate: real git on the host, in the agent and in the bundle.

On docker the gate pushes into the user's repository at once; on a cluster
(k8s) it pushes into a seed lent to the bundle pod, and the work comes home
through the API at the end of the run or with ``bottle home``: the tests
that take ``backend`` hold both to the same outcome.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from contextlib import nullcontext
from pathlib import Path

import pytest

from .bottles import BOTTLE, bottle_cli, bottle_of, wait_for_line, warm_pool, was_claimed, write_manifest

pytestmark = pytest.mark.integration

ZERO = "0" * 40


def git(repo: Path, *args: str, check: bool = True) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                         env={**os.environ, "GIT_AUTHOR_NAME": "Host User", "GIT_AUTHOR_EMAIL": "host@example.test",
                              "GIT_COMMITTER_NAME": "Host User", "GIT_COMMITTER_EMAIL": "host@example.test"})
    if check and out.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {out.stderr}")
    return out.stdout.strip()


def make_repo(path: Path) -> Path:
    """A host repository on main with two commits, a staged and an unstaged change, an untracked and an ignored file."""
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Host User")
    git(path, "config", "user.email", "host@example.test")
    (path / "README.md").write_text("hello\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "first")
    (path / "src").mkdir()
    (path / "src" / "app.py").write_text("print('v1')\n")
    (path / "staged.txt").write_text("staged\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "second")
    (path / "src" / "app.py").write_text("print('v2, not committed')\n")  # unstaged change
    (path / "staged.txt").write_text("staged, changed\n")
    git(path, "add", "staged.txt")  # staged change
    (path / "notes.txt").write_text("untracked\n")
    (path / "debug.log").write_text("ignored\n")
    return path


def snapshot(repo: Path) -> dict:
    """What must not change on the host: HEAD, the index file byte for byte, and every working-tree file."""
    files = {}
    for path in sorted(repo.rglob("*")):
        if ".git" in path.relative_to(repo).parts or not path.is_file():
            continue
        files[str(path.relative_to(repo))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {"head": (repo / ".git" / "HEAD").read_text(), "main": git(repo, "rev-parse", "main"),
            "index": hashlib.sha256((repo / ".git" / "index").read_bytes()).hexdigest(), "files": files,
            "status": git(repo, "status", "--porcelain")}


def git_records(agent: str) -> list[dict]:
    out = bottle_cli("logs", agent, "--git", "--json")
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "manifest"
    folder.mkdir()
    return folder


def test_home_round_trip(tmp_path, manifest_dir, backend, start):
    repo = make_repo(tmp_path / "project")
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {}}, "agents": {"homer": {"bottle": "dev"}}})
    before = snapshot(repo)
    script = (
        "set -e; git rev-parse --abbrev-ref HEAD; git log --format=%H | tr '\\n' ' '; echo;"
        " git status --porcelain | tr '\\n' '|'; echo; cat src/app.py; test ! -e debug.log;"
        " git config --get remote.origin.url;"
        " git checkout -q -b bottle/homer/work; git add -A; git commit -qm 'agent work';"
        " git push origin bottle/homer/work 2>&1; curl -s -o /dev/null http://denied.test/ || true;"
        " git rev-parse HEAD"
    )
    with warm_pool(manifest, "homer", cwd=repo) if start == "pooled" else nullcontext([]) as pooled:
        out = bottle_cli("--backend", backend, "exec", "-m", str(manifest), "--copy-cwd", "homer", "--", "sh", "-c",
                         script, cwd=repo)
        assert all(map(was_claimed, pooled)), "the run did not claim the pooled bottle"
    stdout, stderr = out.stdout.decode(), out.stderr.decode()
    assert out.returncode == 0, stdout + stderr
    lines = stdout.splitlines()
    assert lines[0] == "main"
    assert lines[1].split() == git(repo, "log", "--format=%H").split()
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True).stdout
    assert lines[2] == status.replace("\n", "|")
    assert lines[3] == "print('v2, not committed')"
    assert lines[4].startswith("http://") and lines[4].endswith("/origin.git")
    assert "bottle-gate: pushed to the upstream of origin" in stdout
    pushed = lines[-1]
    # The branch and commit are home; the host's checkout, index and working tree are as they were.
    assert git(repo, "rev-parse", "refs/heads/bottle/homer/work") == pushed
    assert git(repo, "log", "-1", "--format=%s", pushed) == "agent work"
    assert git(repo, "show", f"{pushed}:notes.txt") == "untracked"
    assert snapshot(repo) == before
    assert "bottle: git: pushed bottle/homer/work ->" in stderr
    assert "bottle: egress: 0 allowed, 1 blocked (denied.test)" in stderr
    # After the bottle ended, its logs still tell what happened (on a cluster: the push, then its way home).
    records = git_records("homer")
    came_home = [("home", "refs/heads/bottle/homer/work", pushed)] if backend == "k8s" else []
    assert [(r["decision"], r["refs"][0]["ref"], r["refs"][0]["new"]) for r in records] == [
        ("pushed", "refs/heads/bottle/homer/work", pushed), *came_home]
    if came_home:
        assert f"bottle: git: origin: came home: refs/heads/bottle/homer/work 0000000..{pushed[:7]}" in stderr
    egress = bottle_cli("logs", "homer", "--egress", "--json")
    assert [(r["host"], r["decision"]) for r in map(json.loads, egress.stdout.decode().splitlines())] == [
        ("denied.test", "deny")]


# -- a declared remote: a bare repository on the host ---------------------------------------------


def seed_bare(path: Path, tmp: Path, branches: dict[str, int]) -> Path:
    """A bare repository whose branches each hold ``n`` commits of a shared history."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    work = tmp / f"seed-{path.name}"
    git(tmp, "clone", "-q", str(path), str(work))
    git(work, "checkout", "-q", "-b", "main")
    for number in range(max(branches.values())):
        (work / "file.txt").write_text(f"version {number}\n")
        git(work, "add", "-A")
        git(work, "commit", "-qm", f"commit {number}")
    for branch, count in branches.items():
        git(work, "push", "-q", str(path), f"HEAD~{max(branches.values()) - count}:refs/heads/{branch}")
    return path


def refs_of(bare: Path) -> str:
    return git(bare, "for-each-ref", "--format=%(refname) %(objectname)")


def gate_clone(bottle, remote: str) -> str:
    """The agent clones ``remote`` through the gate into /workspace/up; returns the gate URL."""
    url = f"http://{bottle.plan.network.bundle_ip}:{bottle.plan.git_gate.port}/{remote}.git"
    cloned = bottle.exec(["sh", "-c", f"git clone -q {url} up && cd up && git config user.email a@b.test "
                                      "&& git config user.name agent"])
    assert cloned.ok, cloned.stderr
    return url


def in_clone(bottle, script: str):
    return bottle.exec(["sh", "-c", f"cd /workspace/up && {script} 2>&1"])


def test_declared_remote_to_a_bare_repository(tmp_path, manifest_dir):
    bare = seed_bare(tmp_path / "upstream.git", tmp_path, {"main": 2})
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {"git": {"upstream": {"url": str(bare)}}}},
                                             "agents": {"lander": {"bottle": "dev"}}})
    # The upstream's own hook would refuse every push, and leave a mark: the gate's pushes never run it.
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\ntouch \"$GIT_DIR/hook-ran\"\nexit 1\n")
    hook.chmod(0o755)
    with bottle_of(manifest, "lander") as bottle:
        gate_clone(bottle, "upstream")
        log = in_clone(bottle, "git log --format=%s")
        assert log.text().split("\n")[:2] == ["commit 1", "commit 0"]
        pushed = in_clone(bottle, "git checkout -q -b bottle/lander/feature && echo new > feature.txt && "
                                  "git add feature.txt && git commit -qm feature && git push origin bottle/lander/feature"
                                  " && git rev-parse HEAD")
        assert pushed.ok, pushed.text()
        assert git(bare, "rev-parse", "refs/heads/bottle/lander/feature") == pushed.text().split()[-1]
        assert not (bare / "hook-ran").exists()
        # Fetch through the gate sees what arrived upstream since the clone.
        hook.unlink()
        git(tmp_path / "seed-upstream.git", "push", "-q", str(bare), "main:refs/heads/from-host")
        fetched = in_clone(bottle, "git fetch -q origin && git branch -r")
        assert fetched.ok and "origin/from-host" in fetched.text()


def test_refusals_name_their_rule_and_change_nothing_upstream(tmp_path, manifest_dir, backend):
    bare = seed_bare(tmp_path / "guarded.git", tmp_path, {"main": 3, "release": 3})
    policy = {"allow": ["refs/heads/bottle/*", "refs/heads/release"], "protected": ["refs/heads/release"],
              "max_size": "1m"}
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {"git": {"guarded": {"url": str(bare), "push": policy}}}},
                                             "agents": {"refuser": {"bottle": "dev"}}})
    before = refs_of(bare)
    bad_commit = ("printf 'tree %s\\nparent %s\\nauthor A <a@b.test> 1700000000 +99999\\n"
                  "committer A <a@b.test> 1700000000 +0000\\n\\nbad\\n' \"$(git rev-parse HEAD^{tree})\" "
                  "\"$(git rev-parse HEAD)\" | git hash-object -t commit --literally -w --stdin")
    attempts = {
        "push.allow": "git commit -q --allow-empty -m x && git push origin HEAD:refs/heads/main",
        "push.protected: refs/heads/release is protected: it may not be force-updated":
            "git push -f origin HEAD~2:refs/heads/release",
        "push.protected: refs/heads/release is protected: it may not be deleted": "git push origin :refs/heads/release",
        "push.max_size": "head -c 3000000 /dev/urandom > big.bin && git add big.bin && git commit -qm big && "
                         "git push origin HEAD:refs/heads/bottle/big",
        "fsck": f"bad=$({bad_commit}) && git push origin $bad:refs/heads/bottle/bad",
    }
    with bottle_of(manifest, "refuser", backend=backend) as bottle:
        gate_clone(bottle, "guarded")
        for rule, script in attempts.items():
            out = in_clone(bottle, script)
            assert not out.ok, f"{rule}: the push succeeded: {out.text()}"
            words = out.text()
            expected = rule if rule == "fsck" else f"refused by rule {rule}"
            assert expected in words, words
            if backend == "k8s":  # what waits in the bundle pod comes home on demand: nothing does
                home = bottle_cli("--backend", backend, "home", bottle.plan.slug)
                assert home.returncode == 0 and b"nothing new to bring home" in home.stdout, home.stderr
            assert refs_of(bare) == before, f"{rule}: the upstream changed"
        newest = in_clone(bottle, "git rev-parse HEAD").text().strip()
        if backend != "k8s":  # the gate pushes straight upstream: `bottle home` has nothing to wait for
            home = bottle_cli("--backend", backend, "home", bottle.plan.slug)
            assert home.returncode == 0 and b"nothing waits to come home" in home.stdout, home.stderr
    # Nothing came home at the end either, and none of the refused objects reached the upstream.
    assert refs_of(bare) == before
    assert subprocess.run(["git", "-C", str(bare), "cat-file", "-e", newest]).returncode != 0
    rules = [r["rule"] for r in git_records("refuser")]
    assert rules == ["push.allow", "push.protected", "push.protected", "push.max_size", "receive.fsckObjects"]


def test_upstream_rejection_fails_the_agents_push(tmp_path, manifest_dir):
    bare = seed_bare(tmp_path / "moving.git", tmp_path, {"main": 1, "bottle/shared": 1})
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {"git": {"moving": {"url": str(bare)}}}},
                                             "agents": {"racer": {"bottle": "dev"}}})
    with bottle_of(manifest, "racer") as bottle:
        gate_clone(bottle, "moving")
        # The branch moves upstream after the agent's clone ...
        seed = tmp_path / "seed-moving.git"
        (seed / "other.txt").write_text("host work\n")
        git(seed, "add", "-A")
        git(seed, "commit", "-qm", "host moved the branch")
        git(seed, "push", "-q", str(bare), "HEAD:refs/heads/bottle/shared")
        moved = git(bare, "rev-parse", "bottle/shared")
        # ... so the agent's push of its own work on the old tip is refused by the upstream, and says so.
        out = in_clone(bottle, "git checkout -q bottle/shared && git commit -q --allow-empty -m agent && "
                               "git push origin bottle/shared")
        assert not out.ok, out.text()
        assert "upstream" in out.text() and "non-fast-forward" in out.text(), out.text()
        assert git(bare, "rev-parse", "bottle/shared") == moved
    assert [(r["decision"], r["rule"]) for r in git_records("racer")] == [("refused", "upstream")]


# -- an https upstream holding a token --------------------------------------------------------------


def test_https_upstream_with_a_token_the_agent_never_sees(tmp_path, manifest_dir, git_forge, outbound_env,
                                                          internet_egress, monkeypatch):
    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FORGE_TOKEN", git_forge.token)
    seed_bare(git_forge.repos / "project.git", tmp_path, {"main": 2})
    manifest = write_manifest(manifest_dir, {
        "bottles": {"dev": {"egress": internet_egress,
                            "git": {"forge": {"url": git_forge.url("project"), "token_env": "FORGE_TOKEN"}}}},
        "agents": {"forger": {"bottle": "dev"}}})
    token = git_forge.token
    with bottle_of(manifest, "forger") as bottle:
        url = gate_clone(bottle, "forge")
        pushed = in_clone(bottle, "git checkout -q -b bottle/forger/x && git commit -q --allow-empty -m remote && "
                                  "git push origin bottle/forger/x && git rev-parse HEAD")
        assert pushed.ok, pushed.text()
        assert git(git_forge.repos / "project.git", "rev-parse", "bottle/forger/x") == pushed.text().split()[-1]
        # The forge saw the token on every request that reached it (the gate's), and refused none.
        seen = git_forge.requests()
        assert seen and all(r["authorised"] for r in seen)
        # The token is nowhere the agent can look: environment, processes, git config, home, workspace,
        # nor in what the gate answers.
        answers = " ".join(
            f"curl -s '{url}/info/refs?service={service}';" for service in ("git-upload-pack", "git-receive-pack"))
        hunt = bottle.exec(["sh", "-c", f"env; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; ps auxww; "
                                        f"git -C up config --list; grep -r . $HOME /workspace 2>/dev/null; {answers} "
                                        f"git ls-remote {url}"])
        assert hunt.ok or hunt.stdout, hunt.stderr
        assert token.encode() not in hunt.stdout + hunt.stderr
        assert b"refs/heads/bottle/forger/x" in hunt.stdout  # the hunt did read the gate's answers
        # The forge is the gate's upstream, not a host the agent may reach through the proxy.
        direct = bottle.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_connect}", git_forge.url("project") +
                              "/info/refs?service=git-upload-pack"])
        assert direct.stdout == b"403"


def test_the_gates_user_reaches_only_the_proxy(tmp_path, manifest_dir, git_forge, outbound_env, internet_egress,
                                               monkeypatch):
    from .test_egress_stage import CONNECT, REFUSED

    for key, value in outbound_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FORGE_TOKEN", git_forge.token)
    manifest = write_manifest(manifest_dir, {
        "bottles": {"dev": {"egress": internet_egress,
                            "git": {"forge": {"url": git_forge.url("project"), "token_env": "FORGE_TOKEN"}}}},
        "agents": {"forger": {"bottle": "dev"}}})
    with bottle_of(manifest, "forger") as bottle:
        plan = bottle.plan
        assert plan.git_gate.run_as is None  # an https upstream only: the gate runs as its own user, "gate"

        def connect(user: str, host: str, port: int) -> str:
            return bottle.exec_bundle(["python3", "-c", CONNECT, host, str(port)], user=user).stdout.decode().strip()

        # Past the proxy, the gate's user reaches neither its upstream nor the egress stage ...
        assert connect("egress", git_forge.ip, 443) == "connected", "control: the forge answers the egress stage"
        assert connect("gate", git_forge.ip, 443) == REFUSED
        assert connect("gate", "127.0.0.1", plan.egress.port) == REFUSED
        # ... only the proxy, which judges it like any client.
        assert connect("gate", plan.network.bundle_ip, plan.proxy.port) == "connected"


# -- bottle logs --follow --------------------------------------------------------------------------


def test_logs_follow_streams_pushes_while_the_bottle_runs(tmp_path, manifest_dir):
    import select
    import secrets

    repo = make_repo(tmp_path / "followed")
    agent = f"follow{secrets.token_hex(3)}"
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {}}, "agents": {agent: {"bottle": "dev"}}})
    # After its push the bottle waits for the test's go (stdin closed) before it ends.
    script = ("git checkout -q -b bottle/f/x && git commit -q --allow-empty -m f && git push -q origin bottle/f/x"
              " && { read _ || true; }")
    run = subprocess.Popen([BOTTLE, "exec", "-m", str(manifest), "--copy-cwd", agent, "--", "sh", "-c", script],
                           cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    follower = None
    try:
        deadline = time.monotonic() + 60
        while bottle_cli("logs", agent, "--git").returncode != 0:  # until its state dir exists
            assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()
            time.sleep(0.2)
        follower = subprocess.Popen([BOTTLE, "logs", agent, "--git", "--json", "--follow"], stdout=subprocess.PIPE)
        ready, _, _ = select.select([follower.stdout], [], [], 45)
        assert ready, "no record streamed"
        record = json.loads(follower.stdout.readline())
        assert run.poll() is None, "the record should arrive while the bottle still runs"
        assert record["decision"] == "pushed" and record["refs"][0]["ref"] == "refs/heads/bottle/f/x"
        run.stdin.close()
        assert run.wait(timeout=60) == 0
        assert follower.wait(timeout=15) == 0  # --follow ends with the bottle
    finally:
        for proc in (run, follower):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


# -- the way home from a cluster (k8s) -------------------------------------------------------------


def home_cli(target: str) -> subprocess.CompletedProcess:
    """`bottle home TARGET` on the cluster, as the user would run it while the bottle works."""
    return bottle_cli("--backend", "k8s", "home", target)


def host_refs(repo: Path) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in refs_of(repo).splitlines())


def touch_in_agent(slug: str, path: str) -> None:
    """Create ``path`` in the agent's container of bottle ``slug`` through the Kubernetes exec API."""
    from bottle_k8s import manifests, settings
    from bottle_k8s.streams import exec_in

    made = exec_in(manifests.pod_name(slug, "agent"), "agent", ["touch", path], namespace=settings.namespace())
    assert made.ok, made.stderr


def k8s_run_in_background(manifest: Path, agent: str, repo: Path, script: str) -> subprocess.Popen:
    """``bottle --backend k8s exec --copy-cwd AGENT -- sh -c SCRIPT`` started from ``repo``, its output piped."""
    return subprocess.Popen([BOTTLE, "--backend", "k8s", "exec", "-m", str(manifest), "--copy-cwd", agent, "--",
                             "sh", "-c", script], cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_k8s_home_on_demand_while_the_bottle_runs_and_at_its_end(tmp_path, manifest_dir, k8s_cluster):
    import secrets

    repo = make_repo(tmp_path / "project")
    agent = f"ondemand{secrets.token_hex(3)}"
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {}}, "agents": {agent: {"bottle": "dev"}}})
    before = snapshot(repo)
    # The agent pushes, says so, waits (bounded) for the test's go, then pushes once more and ends.
    script = ("git checkout -q -b bottle/od/x && git add -A && git commit -qm one && git push -q origin bottle/od/x"
              " && echo \"pushed-one $(git rev-parse HEAD)\""
              " && i=0; while [ ! -e /tmp/go ] && [ $i -lt 900 ]; do sleep 0.2; i=$((i+1)); done;"
              " git commit -q --allow-empty -m two && git push -q origin bottle/od/x"
              " && echo \"pushed-two $(git rev-parse HEAD)\"")
    run = k8s_run_in_background(manifest, agent, repo, script)
    try:
        first = wait_for_line(run, b"pushed-one", timeout=240).decode().split()[1]
        assert "refs/heads/bottle/od/x" not in host_refs(repo)  # it waits in the bundle pod ...
        home = home_cli(agent)  # ... until the user asks for it
        assert home.returncode == 0, home.stderr
        assert f"home    origin refs/heads/bottle/od/x 0000000..{first[:7]}" in home.stdout.decode()
        assert host_refs(repo)["refs/heads/bottle/od/x"] == first
        assert git(repo, "show", f"{first}:notes.txt") == "untracked"
        assert snapshot(repo) == before  # HEAD, index and working tree as they were
        again = home_cli(agent)
        assert again.returncode == 0 and b"nothing new to bring home" in again.stdout
        slug = next(row["slug"] for row in json.loads(bottle_cli("--backend", "k8s", "ls", "--json").stdout)
                    if row["agent"] == agent)
        touch_in_agent(slug, "/tmp/go")
        second = wait_for_line(run, b"pushed-two", timeout=120).decode().split()[1]
        assert run.wait(timeout=180) == 0, run.stderr.read().decode()
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    # The end of the run brought the second push home.
    assert host_refs(repo)["refs/heads/bottle/od/x"] == second
    assert git(repo, "merge-base", "--is-ancestor", first, second) == ""
    assert snapshot(repo) == before
    records = [(r["decision"], r["refs"][0]["new"]) for r in git_records(agent)]
    assert records == [("pushed", first), ("home", first), ("pushed", second), ("home", second)]


def test_k8s_home_refuses_what_a_compromised_bundle_pod_wrote(tmp_path, manifest_dir, k8s_cluster):
    repo = make_repo(tmp_path / "project")
    git(repo, "branch", "keep")
    policy = {"allow": ["refs/heads/bottle/*", "refs/heads/main", "refs/heads/keep"], "protected": ["refs/heads/keep"]}
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {"git": {"origin": {"url": str(repo), "push": policy}}}},
                                             "agents": {"forger": {"bottle": "dev"}}})
    before, refs_before = snapshot(repo), host_refs(repo)
    # The pod's own copy is rewritten behind the gate's back, as a compromised bundle pod could.
    forge = ("set -e; cd /srv/upstream/origin; c='git -c user.name=x -c user.email=x@x.test';"
             " evil=$($c commit-tree 'main^{tree}' -p main -m evil); orphan=$($c commit-tree 'main^{tree}' -m orphan);"
             " git update-ref refs/heads/main $evil; git update-ref refs/heads/keep $orphan;"
             " git update-ref refs/heads/other $evil; git update-ref refs/tags/v9 $evil;"
             " git update-ref refs/heads/bottle/fine $evil;"
             " echo $evil")
    with bottle_of(manifest, "forger", backend="k8s") as bottle:
        forged = bottle.exec_bundle(["sh", "-c", forge], user="gate")
        assert forged.ok, forged.stderr
        evil = forged.stdout.decode().split()[-1]
        home = home_cli(bottle.plan.slug)
        said = home.stdout.decode() + home.stderr.decode()
        assert home.returncode == 1, said
        for ref, rule in [("refs/heads/main", "checked-out-branch"), ("refs/heads/keep", "push.protected"),
                          ("refs/heads/other", "push.allow"), ("refs/tags/v9", "push.allow")]:
            assert any(ref in line and f"rule {rule}:" in line for line in said.splitlines()), (ref, said)
        assert "4 ref(s) not brought home" in said
        # Only the benign ref came home; the checkout, index and working tree are as they were.
        assert host_refs(repo) == {**refs_before, "refs/heads/bottle/fine": evil}
        assert snapshot(repo) == before
    # The end of the run refuses them again, and still changes nothing else.
    assert host_refs(repo) == {**refs_before, "refs/heads/bottle/fine": evil}
    assert snapshot(repo) == before
    refused = {(r["refs"][0]["ref"], r["rule"]) for r in git_records("forger") if r["decision"] == "refused"}
    assert refused == {("refs/heads/main", "checked-out-branch"), ("refs/heads/keep", "push.protected"),
                       ("refs/heads/other", "push.allow"), ("refs/tags/v9", "push.allow")}


def test_k8s_home_does_not_clobber_a_ref_that_moved_on_the_host(tmp_path, manifest_dir, k8s_cluster):
    repo = make_repo(tmp_path / "project")
    git(repo, "branch", "bottle/shared")
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {}}, "agents": {"racer": {"bottle": "dev"}}})
    with bottle_of(manifest, "racer", copy_cwd=True, cwd=repo, backend="k8s") as bottle:
        pushed = bottle.exec(["sh", "-c", "git fetch -q origin && git checkout -q -B bottle/shared origin/bottle/shared"
                                          " && git commit -q --allow-empty -m agent && git push -q origin bottle/shared"
                                          " && git push -q origin HEAD:refs/heads/bottle/fresh && git rev-parse HEAD"])
        assert pushed.ok, pushed.stderr
        work = pushed.text().split()[-1]
        # Meanwhile the user moves the same branch on the host, elsewhere.
        tree = git(repo, "rev-parse", "main^{tree}")
        moved = git(repo, "commit-tree", tree, "-p", "bottle/shared", "-m", "host work")
        git(repo, "update-ref", "refs/heads/bottle/shared", moved)
        home = home_cli(bottle.plan.slug)
        said = home.stdout.decode() + home.stderr.decode()
        assert home.returncode == 1, said
        assert "rule moved-on-host: refs/heads/bottle/shared moved on the host" in said and work[:12] in said
        assert host_refs(repo)["refs/heads/bottle/shared"] == moved  # the user's work stays
        assert host_refs(repo)["refs/heads/bottle/fresh"] == work  # the benign counterpart came home
        assert git(repo, "cat-file", "-t", work) == "commit"  # the bottle's work is there, to keep by hand
    assert host_refs(repo)["refs/heads/bottle/shared"] == moved


@pytest.mark.parametrize("end", ["bottle stop", "owner killed"])
def test_k8s_stop_and_the_owners_death_bring_the_work_home_first(tmp_path, manifest_dir, k8s_cluster, end):
    import secrets
    import signal
    repo = make_repo(tmp_path / "project")
    agent = f"ended{secrets.token_hex(3)}"
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {}}, "agents": {agent: {"bottle": "dev"}}})
    script = ("git checkout -q -b bottle/s/x && git commit -q --allow-empty -m s && git push -q origin bottle/s/x"
              " && echo \"pushed $(git rev-parse HEAD)\" && i=0; while [ $i -lt 900 ]; do sleep 0.2; i=$((i+1)); done")
    run = k8s_run_in_background(manifest, agent, repo, script)
    try:
        pushed = wait_for_line(run, b"pushed", timeout=240).decode().split()[1]
        assert "refs/heads/bottle/s/x" not in host_refs(repo)
        if end == "bottle stop":
            slug = next(row["slug"] for row in json.loads(bottle_cli("--backend", "k8s", "ls", "--json").stdout)
                        if row["agent"] == agent)
            stopped = bottle_cli("--backend", "k8s", "stop", slug)
            assert stopped.returncode == 0, stopped.stderr
            assert f"came home: refs/heads/bottle/s/x 0000000..{pushed[:7]}" in stopped.stderr.decode()
        else:  # no teardown: core's reaper stops the bottle, and the work comes home first
            os.kill(run.pid, signal.SIGKILL)
            deadline = time.monotonic() + 120
            while "refs/heads/bottle/s/x" not in host_refs(repo) and time.monotonic() < deadline:
                time.sleep(0.5)
        assert host_refs(repo).get("refs/heads/bottle/s/x") == pushed
        run.wait(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert [(r["decision"], r["refs"][0]["new"]) for r in git_records(agent)] == [("pushed", pushed), ("home", pushed)]


# -- work left in the bottle: named before the bottle goes -------------------------------------------------


def scripted_run(tmp_path: Path, manifest: Path, repo: Path, backend: str, command: str):
    """``bottle run`` of the real claude, whose scripted model runs ``command`` in the workspace once."""
    script = tmp_path / f"script-{hashlib.sha256(command.encode()).hexdigest()[:8]}.json"
    script.write_text(json.dumps([{"tool_use": {"name": "Bash", "input": {"command": command,
                                                                          "description": "work"}}}, "done"]))
    out = bottle_cli("--backend", backend, "run", "-m", str(manifest), "--model-script", str(script), "homer", "--",
                     "go", "--output-format", "text", cwd=repo)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()
    return out.stderr.decode()


def test_a_run_names_commits_not_pushed_and_changes_not_committed_before_its_bottle_goes(tmp_path, manifest_dir,
                                                                                          backend):
    repo = make_repo(tmp_path / "project")
    manifest = write_manifest(manifest_dir, {"bottles": {"dev": {}}, "agents": {"homer": {"bottle": "dev"}}})
    before = snapshot(repo)
    commit = ("cd /workspace && git checkout -q -b feature && echo made > made.txt && git add made.txt"
              " && git commit -qm made")
    stderr = scripted_run(tmp_path, manifest, repo, backend, commit + " && echo scratch > scratch.txt")
    # The host's own uncommitted changes came in with the workspace and are not the agent's: not named.
    left = [line for line in stderr.splitlines() if line.startswith("bottle: work left in the bottle")]
    assert len(left) == 1, stderr
    assert "commits on 1 branch not pushed: feature (" in left[0]
    assert "1 path changed and not committed: scratch.txt" in left[0]
    assert "git push origin HEAD:bottle/NAME" in left[0]
    assert snapshot(repo) == before, "looking changed nothing of the user's"

    # The counterpart: the same work pushed through the gate, and nothing else changed, is not named.
    stderr = scripted_run(tmp_path, manifest, repo, backend, commit + " && git push -q origin HEAD:bottle/feature")
    assert "work left in the bottle" not in stderr, stderr
    assert "bottle: git: pushed bottle/feature" in stderr
