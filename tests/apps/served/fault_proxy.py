"""A small fault-injecting HTTP proxy on the loopback, in front of a real server.

Each request is read whole (headers + ``Content-Length`` body). A script, ``{POST number: fault}``
(POSTs count from 1, retries included; ``GET /models`` is relayed and not counted), decides what
happens to it; a request without a fault is sent to the upstream server on a fresh connection
with ``Connection: close`` and the server's reply is relayed as it came (uvicorn then says
``connection: close`` too, so the client opens a new connection for the next request). Faults:

* ``"429"``: ``429 Too Many Requests`` with ``Retry-After: 1``;
* ``"503"``: ``503 Service Unavailable`` without ``Retry-After``;
* ``"drop"``: the connection is closed without a reply;
* ``"slow"``: the reply is held back for ``slow_s`` seconds (past the client's timeout), then the
  connection is closed;
* ``"notext"``: a 200 whose only choice is a tool call (no text content);
* ``"kill"``: the upstream server's process group is SIGKILLed, then the request is forwarded
  (and fails like every later one: the proxy closes the connection when the upstream refuses).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections import Counter
from typing import Any

__all__ = ["FaultProxy"]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return head + body


def _with_close(request: bytes) -> bytes:
    head, _, body = request.partition(b"\r\n\r\n")
    lines = [
        line
        for line in head.split(b"\r\n")
        if line.split(b":", 1)[0].strip().lower() != b"connection"
    ]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _reply(status: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"connection: close\r\n{extra}\r\n"
    ).encode() + body


_NOTEXT = {
    "id": "fault",
    "object": "chat.completion",
    "created": 0,
    "model": "fault",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call0",
                        "type": "function",
                        "function": {"name": "noop", "arguments": "{}"},
                    }
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class FaultProxy:
    """Listens on ``127.0.0.1:<port>`` in a thread and forwards to ``upstream_port``.

    Args:
        upstream_port: the real server's port on 127.0.0.1.
        faults: ``{request number: fault}`` (see the module docstring).
        slow_s: how long a ``"slow"`` reply is held back.
        upstream_pgid: the process group SIGKILLed by a ``"kill"`` fault.
    """

    def __init__(
        self,
        upstream_port: int,
        faults: dict[int, str] | None = None,
        slow_s: float = 4.0,
        upstream_pgid: int | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.faults = dict(faults or {})
        self.slow_s = slow_s
        self.upstream_pgid = upstream_pgid
        self.seen = 0
        self.injected: Counter[str] = Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # One request per connection: every reply says ``connection: close``.
        try:
            request = await _read_request(reader)
            if request is None:
                return
            fault = None
            if request.startswith(b"POST"):
                self.seen += 1
                fault = self.faults.get(self.seen)
            if fault is not None:
                self.injected[fault] += 1
            await self._answer(fault, request, writer)
        finally:
            writer.close()

    async def _answer(
        self, fault: str | None, request: bytes, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request; False when the connection must be closed."""
        if fault == "429":
            writer.write(
                _reply("429 Too Many Requests", b'{"error": "busy"}', "retry-after: 1\r\n")
            )
        elif fault == "503":
            writer.write(_reply("503 Service Unavailable", b'{"error": "overloaded"}'))
        elif fault == "notext":
            writer.write(_reply("200 OK", json.dumps(_NOTEXT).encode()))
        elif fault == "drop":
            return
        elif fault == "slow":
            await asyncio.sleep(self.slow_s)
            return
        else:
            if fault == "kill" and self.upstream_pgid is not None:
                os.killpg(self.upstream_pgid, signal.SIGKILL)
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", self.upstream_port
                )
            except OSError:
                return
            try:
                up_writer.write(_with_close(request))
                await up_writer.drain()
                reply = await up_reader.read()
            except OSError:  # the upstream died while answering
                return
            finally:
                up_writer.close()
            if not reply:
                return
            writer.write(reply)
        await writer.drain()
