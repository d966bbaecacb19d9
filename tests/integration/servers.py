"""Real local servers for connector tests: an SMTP server (aiosmtpd) and an HTTP server."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from engine.testing.kafka import ROOT, free_port


def kairos_run_http(env: dict[str, str], *args: str,
                    stdout: int = subprocess.DEVNULL) -> tuple[subprocess.Popen[bytes], str]:
    """`kairos run --http` on a free loopback port, once it accepts connections: the process
    (the caller stops it) and its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "run", "--http", f"127.0.0.1:{port}", *args],
        cwd=ROOT, env=env, stdout=stdout, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


class SmtpServer:
    """Collects every message; `refuse` makes it answer RCPT with that SMTP reply."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse: str | None = None
        self.port = free_port()
        outer = self

        class Handler:
            async def handle_RCPT(self, server: Any, session: Any, envelope: Any,
                                  address: str, rcpt_options: Any) -> str:
                if outer.refuse:
                    return outer.refuse
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.messages.append(message_from_bytes(envelope.content))
                return "250 Message accepted"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def ids(self) -> list[str]:
        return [str(m["X-Kairos-Action-Id"]) for m in self.messages]


class HttpServer:
    """Records every request; `respond` decides the status of each (default 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.respond: Callable[[int], int] = lambda n: 200
        self.delay = 0.0  # seconds before answering: a slow provider
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.requests.append((request.path, dict(request.headers), body))
        return web.Response(status=self.respond(len(self.requests)), text="ok")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> HttpServer:
        threading.Thread(target=self._run, daemon=True).start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
