"""Faults for the reliability tests: a CPU hog, a Redis server that can be killed and brought
back, and waits bounded by progress instead of by a fixed time."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HOG = "import time\nend = time.monotonic() + 900\nwhile time.monotonic() < end:\n    pass\n"


@contextmanager
def cpu_hog() -> Iterator[None]:
    """One core kept busy (bounded to 15 minutes by itself), as on a shared, loaded machine."""
    proc = subprocess.Popen([sys.executable, "-c", HOG])
    try:
        yield
    finally:
        proc.kill()
        proc.wait(10)


class RedisServer:
    """A real redis-server of the test's own, with an append-only file synced on every write,
    as production should run the connectors' idempotency store: a crash loses no record."""

    def __init__(self, port: int, data_dir: Path) -> None:
        self.port, self.data_dir = port, data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server not installed: run through `make test`"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, 30, "redis-server to answer")
        return self

    def kill(self) -> None:
        """A crash, not a shutdown: SIGKILL."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def wait_for_progress(count: Callable[[], int], target: int, stall: float, what: str) -> None:
    """Until `count()` reaches `target`; fails only when it stops moving for `stall` seconds,
    so a slow machine takes longer instead of failing."""
    last, moved = count(), time.monotonic()
    while last < target:
        time.sleep(0.2)
        now = count()
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall:
            raise AssertionError(f"{what}: stuck at {last} of {target} for {stall:.0f}s")
