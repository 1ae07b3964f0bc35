"""A counting SMTP server for the sender benchmark (aiosmtpd, its own process).

``python bench/smtp_sink.py PORT`` listens on 127.0.0.1:PORT, accepts every
message, answers ``451`` once to each recipient whose local part starts with
``retry`` (so the sender's retries run), and on SIGTERM prints one JSON line:
``{"messages": n, "unique_ids": k, "duplicates": d}`` counted on the
``X-Lodestar-Message-Id`` header. Prints ``READY`` when it accepts connections.

Like Postfix, Exim and the hosted relays it advertises ``PIPELINING`` (RFC 2920),
so the sender sends MAIL, RCPT and DATA as one group; aiosmtpd still answers each
command in turn. ``SMTP_SINK_PIPELINING=0`` leaves it out (one round trip per
command, for comparison).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
from typing import Any

from aiosmtpd.controller import Controller

_ID = re.compile(rb"^X-Lodestar-Message-Id:\s*(\S+)", re.MULTILINE | re.IGNORECASE)


class Counter:
    def __init__(self) -> None:
        self.messages = 0
        self.ids: dict[bytes, int] = {}
        self.retried: set[str] = set()

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        if os.environ.get("SMTP_SINK_PIPELINING", "1") == "0":
            return responses
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: Any) -> str:
        if address.startswith("retry") and address not in self.retried:
            self.retried.add(address)
            return "451 4.3.0 try again"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        found = _ID.search(envelope.content[:4096])
        if found:
            self.ids[found.group(1)] = self.ids.get(found.group(1), 0) + 1
        return "250 2.0.0 accepted"


def main() -> int:
    port = int(sys.argv[1])
    counter = Counter()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print("READY", flush=True)
    done.wait()
    controller.stop()
    duplicates = sum(n - 1 for n in counter.ids.values() if n > 1)
    print(json.dumps({"messages": counter.messages, "unique_ids": len(counter.ids),
                      "duplicates": duplicates}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
