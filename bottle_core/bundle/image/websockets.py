"""WebSocket connections: only to hosts the bottle lists, and read both ways like any request and response.

An ``Upgrade: websocket`` request is judged like every request (the policy,
then content inspection, then secrets swapped into its headers); unless its
host is listed in ``egress.websockets`` it is refused (rule ``websocket``).
On a listed host's connection:

* each message from the agent is read like a request body
  (``inspection.Inspector``): one carrying a secret to a host it is not bound
  to, a placeholder included, or a credential, is never sent, and the
  connection is closed (mitmproxy cannot kill a WebSocket flow in transit,
  so the message is replaced by closing the agent's connection, which ends
  the server's too);
* each message from the server has real secret values replaced by their
  placeholders (``response_inspection.Scrubber``);
* control frames (ping and pong payloads, close reasons), which mitmproxy
  relays without an addon hook, get the same treatment on their way
  (:func:`install` wraps the one method that sends every frame): scrubbed
  towards the agent, emptied towards the server when they carry what a
  message may not.

Secrets are swapped into the upgrade request's headers only, never into
messages. A secret split over several messages is not recognised.
"""

from __future__ import annotations

import weakref
from typing import Callable

import wsproto.events
from mitmproxy import connection
from mitmproxy.proxy import commands
from mitmproxy.proxy.layers import websocket

#: Longest payload of a control frame, and of a close reason (less the code's two bytes).
MAX_PAYLOAD, MAX_REASON = 125, 123

#: Connections whose next frame is replaced by closing the agent's connection: server connection -> [client, done].
_ENDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def is_upgrade(headers) -> bool:
    """Whether a request asks to become a WebSocket connection."""
    return "websocket" in headers.get("upgrade", "").lower()


def end(server: connection.Server, client: connection.Client) -> None:
    """Close the agent's connection (and so the server's) instead of sending the next frame to ``server``."""
    _ENDING[server] = [client, False]


def install(outbound: Callable[[connection.Server, bytes], bool], inbound: Callable[[bytes], bytes]) -> None:
    """Route every frame mitmproxy sends through bottle's checks.

    :param outbound: whether a control payload may go to this server (False: it is emptied).
    :param inbound: a control payload for the agent, scrubbed.
    """
    send = websocket.WebsocketConnection.send2

    def send2(self, event: wsproto.events.Event) -> commands.Command:
        ending = _ENDING.get(self.conn)
        if ending is not None:
            if ending[1]:
                return commands.Log("bottle: WebSocket frame dropped (connection ending)", "debug")
            ending[1] = True
            return commands.CloseConnection(ending[0])
        payload = getattr(event, "payload", None) if isinstance(event, (wsproto.events.Ping, wsproto.events.Pong)) \
            else (event.reason or "").encode() if isinstance(event, wsproto.events.CloseConnection) else None
        if payload:
            if isinstance(self.conn, connection.Server):
                clean = bytes(payload) if outbound(self.conn, bytes(payload)) else b""
            else:
                clean = inbound(bytes(payload))
            if isinstance(event, wsproto.events.CloseConnection):
                reason = clean.decode("utf-8", "replace") if len(clean) <= MAX_REASON else ""
                event = wsproto.events.CloseConnection(event.code, reason)
            else:
                event = type(event)(payload=clean if len(clean) <= MAX_PAYLOAD else b"")
        return send(self, event)

    websocket.WebsocketConnection.send2 = send2
