"""The console's HTTP side: server-rendered pages under `/console`, live parts with htmx.

Pages are Jinja2 templates (autoescaped) rendered here; the figures refresh by htmx polling a
fragment, and the live stream is server-sent events (htmx's SSE extension). Both libraries are
vendored under `static/` and served by the engine itself: no CDN, no build step. Every request,
assets included, needs a console user (`auth.py`).

    GET /console                  overview
    GET /console/rules            every loaded rule with its figures and health
    GET /console/contacts?q=ID    a contact's profile and timeline
    GET /console/live             actions as they are decided (?rule=&channel=)
    GET /console/live/stream      the same as text/event-stream
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.resources import files
from typing import Any

from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape

from engine.config import Settings
from engine.console import figures, story
from engine.console.auth import ConsoleUser, Users
from engine.console.history import FINE, History, Snapshot
from engine.console.mask import ADDRESS_CHANNELS, mask
from engine.console.source import ConsoleSource, LiveAction
from engine.ops.explain import resolve

__all__ = ["PREFIX", "console_app", "mount", "serve"]

log = logging.getLogger("kairos.console")
PREFIX = "/console"
HEARTBEAT = 15.0
STATIC = files("engine.console") / "static"
ASSETS = {"htmx.min.js": "text/javascript", "sse.min.js": "text/javascript",
          "console.css": "text/css"}
HOW_TO = ("The console shows personal data and needs users of its own: set "
          "KAIROS_CONSOLE_USERS=name:password[,name:password...] (or name:scrypt$... from "
          "`kairos console hash-password`) and restart. Write keys never open the console.")

USER = "kairos.console.user"  # the request key of the authenticated ConsoleUser
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("engine.console", "templates"),
                      autoescape=select_autoescape(), trim_blocks=True, lstrip_blocks=True)
    env.filters.update(stamp=story.stamp, per_hour=figures.per_hour_text,
                       duration=figures.duration_text, ago=_ago)
    return env


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    seconds = max(time.time() - ts, 0.0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"


class Console:
    """One console over one source: the metric history, the templates, the handlers."""

    def __init__(self, source: ConsoleSource, users: Users) -> None:
        self.source = source
        self.users = users
        self.history = History()
        self.env = _environment()

    async def sample(self) -> None:
        self.history.add(Snapshot.of(time.time(), await self.source.samples()))

    async def sampling(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:  # a figure we cannot read now must not end the console
                log.exception("console: reading the metrics failed")
            await asyncio.sleep(FINE)

    def page(self, request: web.Request, template: str, **context: Any) -> web.Response:
        user: ConsoleUser = request[USER]
        html = self.env.get_template(template).render(
            user=user, runtime=self.source.runtime, prefix=PREFIX, path=request.path,
            **context)
        return web.Response(text=html, content_type="text/html")

    @web.middleware
    async def authenticate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self.users:
            return web.Response(status=401, text=HOW_TO, content_type="text/plain")
        user = self.users.check(request.headers.get("Authorization"))
        if user is None:
            return web.Response(status=401, text="Console credentials needed.\n" + HOW_TO,
                                content_type="text/plain",
                                headers={"WWW-Authenticate": 'Basic realm="Kairos console"'})
        request[USER] = user
        return await handler(request)

    async def overview(self, request: web.Request) -> web.Response:
        return self.page(request, "_overview.html" if _fragment(request) else "overview.html",
                         o=figures.overview(self.history))

    async def rules(self, request: web.Request) -> web.Response:
        rows = figures.rule_rows(self.history, self.source.ruleset())
        shadow = [r for r in rows if r.mode == "shadow"]
        peers = {s.rule.id: [r for r in rows if r.mode == "live"
                             and set(r.rule.triggers) & set(s.rule.triggers)] for s in shadow}
        return self.page(request, "_rules.html" if _fragment(request) else "rules.html",
                         rows=rows, shadow=shadow, peers=peers)

    async def contact(self, request: web.Request) -> web.Response:
        query = request.query.get("q", "").strip()
        context: dict[str, Any] = {"q": query}
        if query:
            identity, contacts = self.source.lookups()
            st = resolve(query, identity, contacts)
            unmasked = request[USER].unmasked
            if st is None:
                context["missing"] = True
                context["loading"] = self._loading()
            else:
                context["p"] = story.profile(st, unmasked=unmasked)
                context["timeline"] = story.timeline(st, unmasked=unmasked)
        return self.page(request, "contact.html", **context)

    def _loading(self) -> str:
        """Why a contact may be missing yet: the Kafka console's copy of the tables is still
        catching up (`kairos_console_copy_progress` below 1)."""
        share = self.history.latest().values.get(("kairos_console_copy_progress", ()))
        if share is None or share >= 1:
            return ""
        return f"the console is still reading the contacts ({share:.0%})"

    async def live(self, request: web.Request) -> web.Response:
        rules = sorted(self.source.ruleset().rules)
        return self.page(request, "live.html", rules=rules, rule=request.query.get("rule", ""),
                         channel=request.query.get("channel", ""),
                         channels=sorted(ADDRESS_CHANNELS | {"web", "crm"}))

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: the recent actions that match, then each new one."""
        rule, channel = request.query.get("rule", ""), request.query.get("channel", "")
        unmasked = request[USER].unmasked
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no"})
        await response.prepare(request)
        reader = self.source.feed.subscribe()
        template = self.env.get_template("_action.html")

        async def send(item: LiveAction) -> None:
            a = item.action
            if (rule and a.rule_id != rule) or (channel and a.channel != channel):
                return
            recipient = a.recipient or ""
            if recipient and not unmasked and a.channel in ADDRESS_CHANNELS:
                recipient = mask(recipient)
            html = template.render(a=a, shadow=item.shadow, recipient=recipient)
            data = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
            await response.write(f"event: action\n{data}\n".encode())

        try:
            for item in self.source.feed.recent():
                await send(item)
            while True:
                try:
                    item = await asyncio.wait_for(reader.get(), HEARTBEAT)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                await send(item)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.source.feed.unsubscribe(reader)
        return response

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound()
        return web.Response(body=(STATIC / name).read_bytes(), content_type=ASSETS[name],
                            headers={"Cache-Control": "max-age=3600"})

    async def run(self, _: web.Application) -> AsyncIterator[None]:
        """Open the source and sample its metrics while the console is up."""
        await self.source.start()
        await self.sample()
        task = asyncio.create_task(self.sampling())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.source.stop()


def _fragment(request: web.Request) -> bool:
    """htmx asks for the part of a page it refreshes, not the whole page."""
    return request.query.get("fragment") == "1"


def console_app(source: ConsoleSource, users: Users) -> web.Application:
    """The console as an aiohttp application, to be mounted at `PREFIX`."""
    console = Console(source, users)
    app = web.Application(middlewares=[console.authenticate])
    app.cleanup_ctx.append(console.run)
    app.router.add_get("", console.overview)
    app.router.add_get("/", console.overview)
    app.router.add_get("/rules", console.rules)
    app.router.add_get("/contacts", console.contact)
    app.router.add_get("/live", console.live)
    app.router.add_get("/live/stream", console.stream)
    app.router.add_get("/static/{name}", console.asset)
    return app


def users_of(settings: Settings) -> Users:
    return Users.parse(settings.console_users, settings.console_unmasked)


def mount(app: web.Application, source: ConsoleSource, settings: Settings) -> Users:
    """Serve the console at `/console` of an existing application (the embedded collector)."""
    users = users_of(settings)
    app.add_subapp(PREFIX, console_app(source, users))
    return users


async def serve(source: ConsoleSource, address: str, settings: Settings) -> None:
    """`kairos console`: the console alone, until SIGINT or SIGTERM."""
    import signal

    root = web.Application()
    users = mount(root, source, settings)

    async def home(_: web.Request) -> web.Response:
        raise web.HTTPFound(PREFIX)

    root.router.add_get("/", home)
    host, _, port = address.rpartition(":")
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    log.warning("console on http://%s:%s%s%s", host or "127.0.0.1", port, PREFIX,
                "" if users else " (no KAIROS_CONSOLE_USERS: every request is a 401)")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()
