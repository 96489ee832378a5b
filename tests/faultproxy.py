"""A reverse proxy on loopback between the bot and its homeserver that injects faults on request:
a request that is accepted and never answered (until released), or a proxy's 502 (an HTML page,
no Matrix error code), for the requests whose method and path match.

It runs its own event loop in a thread, so a test that blocks (starting the bot waits with
``time.sleep``) never stalls the bot's traffic.
"""

from __future__ import annotations

import asyncio
import re
import threading
from urllib.parse import unquote
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

_HOP = {"host", "content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"}


@dataclass
class Rule:
    method: str
    path: re.Pattern
    action: str  # "hang" or "502"
    times: int | None  # how many requests it catches; None: until released
    caught: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    def catches(self, method: str, path: str) -> bool:
        if self.released.is_set() or method != self.method or not self.path.search(path):
            return False
        return self.times is None or self.caught < self.times


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.rules: list[Rule] = []
        self.injected: Counter = Counter()  # "hang" / "502" → requests caught
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # --- the test's side

    # ``path`` is a regular expression searched in the request's decoded path (no query).

    def hang(self, method: str, path: str, times: int | None = None) -> Rule:
        """Accept matching requests and answer nothing until the rule is released; then pass them on."""
        return self._add(Rule(method, re.compile(path), "hang", times))

    def fail(self, method: str, path: str, times: int | None = None) -> Rule:
        """Answer matching requests with a 502 from "the proxy" until released (or ``times`` of them)."""
        return self._add(Rule(method, re.compile(path), "502", times))

    def release(self, rule: Rule) -> None:
        rule.released.set()

    def caught(self, rule: Rule) -> int:
        return rule.caught

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def start(self) -> str:
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.url

    def stop(self) -> None:
        with self._lock:
            for rule in self.rules:
                rule.released.set()
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(60)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # --- the proxy's side

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None), auto_decompress=True)
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        await self._runner.cleanup()
        await self._session.close()

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.catches(method, path):
                    rule.caught += 1
                    self.injected[rule.action] += 1
                    return rule
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path
        rule = self._rule_for(request.method, unquote(path.split("?")[0]))  # rules name room ids as they are
        if rule is not None and rule.action == "502":
            return web.Response(status=502, text="<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", content_type="text/html")
        if rule is not None and rule.action == "hang":
            while not rule.released.is_set():
                await asyncio.sleep(0.1)
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._session.request(request.method, self.upstream + path, headers=headers, data=body or None) as resp:
            data = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
            return web.Response(status=resp.status, body=data, headers=out)
