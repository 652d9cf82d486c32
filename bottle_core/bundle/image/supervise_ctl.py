"""Talk to the supervisor's control socket from inside the bundle; the host runs this through its backend.

Usage::

    supervise_ctl.py pending                      # the calls waiting for an answer
    supervise_ctl.py answer ID approve|deny HASH|- [REASON]   # HASH: answer only the call of that hash

Prints the supervisor's JSON reply on one line (``{"error": ...}`` when it
cannot be reached).
"""

from __future__ import annotations

import json
import socket
import sys

from .supervisor import CONTROL_SOCKET


def request(message: dict) -> dict:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(CONTROL_SOCKET)
            sock.sendall(json.dumps(message).encode() + b"\n")
            reply = sock.makefile("rb").readline()
        return json.loads(reply)
    except FileNotFoundError:
        # The supervisor starts on the first hook event (see entrypoint.py): before it, no call waits.
        if message["op"] == "pending":
            return {"pending": []}
        return {"error": f"no call waits under id {message.get('id')!r} (waiting: none; no hook event has "
                         "reached the supervisor yet)"}
    except (OSError, ValueError) as exc:
        return {"error": f"the supervisor does not answer: {exc}"}


def main(argv: list[str]) -> int:
    if argv[:1] == ["pending"]:
        reply = request({"op": "pending"})
    elif len(argv) >= 4 and argv[0] == "answer" and argv[2] in ("approve", "deny"):
        reply = request({"op": "answer", "id": argv[1], "approve": argv[2] == "approve",
                         "hash": None if argv[3] == "-" else argv[3], "reason": " ".join(argv[4:])})
    else:
        reply = {"error": "usage: supervise_ctl.py pending | answer ID approve|deny HASH|- [REASON]"}
    print(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
