"""Sample a running benchmark process with py-spy and name its top costs.

``py-spy`` is not a Lodestar dependency: install it anywhere (``pip install
py-spy``) and pass its path to a benchmark's ``--py-spy``. It samples the
target from outside (``--nonblocking``: the target is never paused), so the
figures of a profiled run are a little lower than an unprofiled one (py-spy
uses CPU on the same cores); benchmarks print them as profiles, not results.
Non-blocking samples may catch a stack half-unwound, which lowers the
inclusive shares of outer frames; ``--py-spy-blocking`` pauses the target for
each sample instead (exact stacks, slower target).

``summarize(raw_file)`` reads py-spy's ``--format raw`` output (collapsed
stacks, one ``frame;frame;… count`` per line) and lists the functions with
the largest inclusive share of samples (the function or anything it called
was running) and the largest self share (the function itself was on top).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


class PySpy:
    """``py-spy record`` attached to ``pid`` until ``stop()``; raw stacks in ``out``."""

    def __init__(
        self, binary: str, pid: int, out: Path, rate: int = 100, *, blocking: bool = False
    ) -> None:
        self.binary = binary
        self.pid = pid
        self.out = out
        self.rate = rate
        self.blocking = blocking
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "record", "--pid", str(self.pid), "--rate", str(self.rate),
            "--format", "raw", "--output", str(self.out),
            *([] if self.blocking else ["--nonblocking"]),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )

    async def stop(self) -> None:
        """Stop sampling (SIGINT makes py-spy write its output) and wait for the file."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def _frame_name(frame: str) -> str:
    """``encode (lodestar/contracts/codec.py:120)`` → ``encode (lodestar/contracts/codec.py)``."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "services/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def summarize(raw: Path, top: int = 20) -> str:
    """Top functions by inclusive and by self share of the samples in ``raw``."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        count = int(match["count"])
        frames = [_frame_name(f) for f in match["stack"].split(";") if f]
        if frames and frames[0].startswith(("process ", "thread ")):
            frames = frames[1:]
        if not frames:
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if total == 0:
        return "(no samples)"
    lines = [f"{total:,} samples (py-spy, non-idle); inclusive = on the stack, self = on top"]
    lines.append(f"{'inclusive':>9}  function")
    lines += [f"{100 * n / total:8.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines.append(f"{'self':>9}  function")
    lines += [f"{100 * n / total:8.1f}%  {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


class MachineCpu:
    """CPU used by every process on the machine between ``mark()`` and ``top()``.

    Reads ``/proc``; names a process by its command line (``label`` maps pids
    to names the caller knows, e.g. the API or the broker).
    """

    def __init__(self, label: dict[int, str] | None = None) -> None:
        self.label = label or {}
        self._start: tuple[float, dict[int, int], int, int] | None = None

    @staticmethod
    def _snapshot() -> tuple[float, dict[int, int], int, int]:
        ticks: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
        with open("/proc/stat") as f:
            cpu = [int(x) for x in f.readline().split()[1:]]
        return time.monotonic(), ticks, sum(cpu), cpu[3] + cpu[4]

    def mark(self) -> None:
        self._start = self._snapshot()

    def _name(self, pid: int) -> str:
        if pid in self.label:
            return self.label[pid]
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return f"pid {pid} (exited)"
        if "kafka.Kafka" in raw:
            config = raw.rsplit(" ", 2)[-2] if raw.strip() else ""
            return f"kafka broker ({config})"
        return raw.strip()[:90] or f"pid {pid}"

    def top(self, n: int = 6) -> tuple[float, float, list[tuple[float, int, str]]]:
        """(seconds, machine busy share 0..1, [(cores, pid, name)] of the busiest processes)."""
        assert self._start is not None
        t0, before, all0, idle0 = self._start
        t1, after, all1, idle1 = self._snapshot()
        hz = os.sysconf("SC_CLK_TCK")
        span = max(t1 - t0, 1e-9)
        used = [((after[pid] - before.get(pid, 0)) / hz / span, pid) for pid in after]
        used.sort(reverse=True)
        busy = 1 - (idle1 - idle0) / (all1 - all0) if all1 > all0 else 0.0
        return span, busy, [(cores, pid, self._name(pid)) for cores, pid in used[:n] if cores > 0]


def format_cpu(span: float, busy: float, rows: list[tuple[float, int, str]]) -> str:
    """``MachineCpu.top`` as text lines."""
    lines = [f"machine: {busy:.0%} of {os.cpu_count()} cores busy over {span:.1f} s; "
             "busiest processes (cores):"]
    lines += [f"  {cores:5.2f}  {name} [{pid}]" for cores, pid, name in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(summarize(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 20))
