"""bottle-hello: an example bottle plugin (entry point ``bottle.plugins: hello``).

The module itself is the plugin: bottle registers it with its plugin manager,
and every function marked ``@hookimpl`` whose name is a bottle hook is called
when that hook runs. Keep this module cheap to import: it is loaded whenever
a bottle command needs the plugins.
"""

from __future__ import annotations

import click

from bottle_core import hookimpl

#: Name of the file written into the agent's home folder.
GREETING_FILE = ".bottle-hello"


def greeting(name: str) -> str:
    """The greeting, for the command and for the file."""
    return f"Hello from bottle-hello, {name}!"


@hookimpl
def provision_supervise(plan, bottle):
    """Leave ``~/.bottle-hello`` in the agent's home folder.

    ``provision_supervise`` runs last of the provision hooks, so the sandbox is
    complete here. A plugin only uses the Bottle handle's public methods, so it
    works with every backend.
    """
    text = greeting(plan.agent) + "\n"
    # write_files owns the file by the agent user (plan.guest.uid) unless told otherwise.
    bottle.write_files(plan.guest.home, {GREETING_FILE: text.encode()}, mode=0o644)


@hookimpl
def register_commands(cli):
    """Add ``bottle hello`` to the command line."""
    cli.add_command(hello)


@click.command()
@click.argument("name", default="world")
def hello(name: str) -> None:
    """Print a greeting (an example plugin command)."""
    click.echo(greeting(name))
