"""The origin's HTTP/2 side (``origin.py --h2-port``): trailers both ways, as gRPC and a careless API use them.

Every request is answered with JSON naming what arrived (``path``, ``headers``,
``trailers``, ``body``), credential values hashed as in the log. A request to
``/trailers`` is answered with response trailers that quote the request's
``Authorization`` header back (``x-echo-authorization``) beside ``grpc-status: 0``,
as a server that reflects what it was sent would. Needs python3-h2.
"""

from __future__ import annotations

import json
import os
import socketserver
import time

import h2.config
import h2.connection
import h2.events

from serving import HandshakeInThread, log_line, redacted, tls_context


class Handler(socketserver.BaseRequestHandler):
    """One HTTP/2 connection: each stream answered when it ends."""

    def handle(self):
        sock = self.request
        connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False,
                                                                                 header_encoding="utf-8"))
        connection.initiate_connection()
        sock.sendall(connection.data_to_send())
        streams: dict[int, dict] = {}
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            for event in connection.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = {"headers": dict(event.headers), "trailers": {}, "body": b""}
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id]["body"] += event.data
                    connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.TrailersReceived):
                    streams[event.stream_id]["trailers"] = dict(event.headers)
                elif isinstance(event, h2.events.StreamEnded):
                    self._answer(connection, event.stream_id, streams.pop(event.stream_id))
            sock.sendall(connection.data_to_send())

    def _answer(self, connection, stream_id: int, stream: dict) -> None:
        headers = stream["headers"]
        entry = {"time": time.time(), "scheme": "h2", "port": self.server.server_address[1],
                 "method": headers.get(":method"), "path": headers.get(":path"),
                 "headers": redacted({k: v for k, v in headers.items() if not k.startswith(":")}),
                 "trailers": redacted(stream["trailers"]), "body": stream["body"].decode("utf-8", "replace")}
        log_line(entry, os.environ.get("ORIGIN_LOG"))
        body = json.dumps(entry).encode()
        trailers = headers.get(":path", "").startswith("/trailers")
        connection.send_headers(stream_id, [(":status", "200"), ("content-type", "application/json"),
                                            ("content-length", str(len(body)))])
        connection.send_data(stream_id, body, end_stream=not trailers)
        if trailers:
            connection.send_headers(stream_id, [("grpc-status", "0"),
                                                ("x-echo-authorization", headers.get("authorization", ""))],
                                    end_stream=True)


class Server(HandshakeInThread, socketserver.ThreadingTCPServer):
    """HTTPS that offers only h2 by ALPN."""

    daemon_threads = True
    allow_reuse_address = True
    scheme = "h2"

    def __init__(self, address, cert: str, key: str):
        super().__init__(address, Handler)
        self.tls = tls_context(cert, key, alpn="h2")
