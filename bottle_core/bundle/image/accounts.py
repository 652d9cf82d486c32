"""The bundle's users as uids: the daemon table names them, the entry point runs each daemon as its own and the
packet filter's rules name the same uids.
"""

from __future__ import annotations

import pwd


def account(user: str | tuple[int, int]) -> tuple[int, int]:
    """``(uid, gid)`` of the image's user ``user``, or ``user`` itself when it is one already."""
    if isinstance(user, tuple):
        return user
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def uids(config: dict, rows, account=account) -> dict[str, int]:
    """Each daemon's uid, by name; two daemons of different users may not share one.

    The packet filter tells the daemons apart by uid alone: a git gate run as
    its upstream repository's owner, when that owner is another daemon's
    user, would share what that daemon may reach.
    """
    users: dict[int, object] = {}
    found = {}
    for row in rows:
        user = row.user(config)
        uid = found[row.name] = account(user)[0]
        if users.setdefault(uid, user) != user:
            raise SystemExit(f"bottle-bundle: the {row.name} would run as uid {uid}, another daemon's user; each "
                             "needs its own (give the repository the git gate pushes to another owner)")
    return found
