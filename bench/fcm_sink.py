"""A counting FCM HTTP v1 server for the push sender benchmark (plain asyncio, its own process).

``python bench/fcm_sink.py PORT`` listens on 127.0.0.1:PORT and speaks HTTP/1.1
with keep-alive (what httpx uses against ``http://``):

- ``POST /token``: hands out an access token (``{"access_token", "expires_in"}``);
  the assertion is not verified (tests/channels/push_peers.py does that).
- ``POST /v1/projects/<p>/messages:send``: answers ``503 UNAVAILABLE`` once to each
  token starting with ``retry`` (so the sender's retries run), else ``200`` with a
  ``name``. Accepted messages are counted on ``message.data.mid`` (the message id).

On SIGTERM it prints one JSON line ``{"messages": n, "unique_ids": k, "duplicates": d,
"unavailable": u, "cpu_s": c}`` (accepted messages, distinct ids among them, repeats,
503s sent, the sink's own CPU seconds).
Prints ``READY`` when it accepts connections.
"""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sys

_TOKEN = json.dumps({"access_token": "ya29.bench", "expires_in": 3600,
                     "token_type": "Bearer"}).encode()
_UNAVAILABLE = json.dumps({"error": {
    "code": 503, "status": "UNAVAILABLE", "message": "The service is currently unavailable.",
    "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                 "errorCode": "UNAVAILABLE"}]}}).encode()


class Counter:
    def __init__(self) -> None:
        self.messages = 0
        self.ids: dict[str, int] = {}
        self.retried: set[str] = set()
        self.unavailable = 0
        self.next_name = 0

    def send(self, body: bytes) -> tuple[int, bytes]:
        message = json.loads(body)["message"]
        token = message.get("token", "")
        if token.startswith("retry") and token not in self.retried:
            self.retried.add(token)
            self.unavailable += 1
            return 503, _UNAVAILABLE
        self.messages += 1
        mid = (message.get("data") or {}).get("mid")
        if mid is not None:
            self.ids[mid] = self.ids.get(mid, 0) + 1
        self.next_name += 1
        return 200, b'{"name":"projects/bench/messages/%d"}' % self.next_name


_REASON = {200: b"OK", 404: b"Not Found", 503: b"Service Unavailable"}


class Http(asyncio.Protocol):
    def __init__(self, counter: Counter) -> None:
        self.counter = counter
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self.respond(head[0], body)

    def respond(self, request_line: str, body: bytes) -> None:
        assert self.transport is not None
        method, path, _ = request_line.split(" ", 2)
        if method == "POST" and path == "/token":
            status, out = 200, _TOKEN
        elif method == "POST" and path.endswith("/messages:send"):
            status, out = self.counter.send(body)
        else:
            status, out = 404, b'{"error":{"code":404,"status":"NOT_FOUND"}}'
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, _REASON[status], len(out), out))


async def serve(port: int) -> Counter:
    counter = Counter()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Http(counter), "127.0.0.1", port, backlog=1024)
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    print("READY", flush=True)
    await done.wait()
    server.close()
    return counter


def main() -> int:
    counter = asyncio.run(serve(int(sys.argv[1])))
    duplicates = sum(n - 1 for n in counter.ids.values() if n > 1)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"messages": counter.messages, "unique_ids": len(counter.ids),
                      "duplicates": duplicates, "unavailable": counter.unavailable,
                      "cpu_s": round(usage.ru_utime + usage.ru_stime, 2)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
