"""How the ``bottle`` process ends (``bottle_core.cli.leave``): without the interpreter's teardown, but with
everything a normal end does that a user could notice. Each case is a Python process of its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(body: str) -> subprocess.CompletedProcess:
    code = "import sys, threading, time, atexit\nfrom bottle_core.cli import leave, main\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_the_exit_status_and_the_output_written_before_it_are_kept():
    done = run("""
        print("on stdout", end="")  # unflushed: a pipe is block-buffered
        sys.stderr.write("on stderr")
        leave(3)
    """)
    assert (done.returncode, done.stdout, done.stderr) == (3, "on stdout", "on stderr")


def test_no_status_is_success_and_a_message_is_printed_with_status_1():
    assert run("leave(None)").returncode == 0
    done = run("leave('bottle: a message')")
    assert done.returncode == 1 and done.stderr.strip() == "bottle: a message"


def test_threads_that_are_not_daemons_finish_and_exit_functions_run_first():
    done = run("""
        def late():
            time.sleep(0.2)  # still running when the main thread leaves
            print("thread finished", flush=True)

        threading.Thread(target=late).start()
        atexit.register(lambda: print("exit function ran", flush=True))
        leave(0)
    """)
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["thread finished", "exit function ran"]


def test_the_command_ends_through_it_with_the_commands_status(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import sys; sys.argv = ['bottle', 'exec', '-m', "
                           f"'{tmp_path / 'missing.toml'}', 'demo', '--', 'true']; "
                           "from bottle_core.cli import main; main(); print('not reached')"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "missing.toml" in done.stderr and "not reached" not in done.stdout


def test_a_caller_in_process_gets_systemexit_as_before():
    done = run("""
        try:
            main(["exec", "-m", "/nonexistent/bottle.toml", "demo", "--", "true"])
        except SystemExit as exc:
            print("SystemExit", exc.code)
    """)
    assert done.returncode == 0 and done.stdout.strip() == "SystemExit 2"
