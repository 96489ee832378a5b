"""A 429 is waited out for as long as the server asks, in the body or only in ``Retry-After``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import nio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.client import Client, retry_after_ms


def test_retry_after_reads_seconds_and_dates():
    now = datetime(2026, 11, 30, 9, 0, 0, tzinfo=timezone.utc)
    assert retry_after_ms("3", now) == 3000
    assert retry_after_ms(" 0 ", now) == 1
    assert retry_after_ms("Mon, 30 Nov 2026 09:00:07 GMT", now) == 7000
    assert retry_after_ms("Mon, 30 Nov 2026 08:59:00 GMT", now) == 1  # already past: at once
    for nonsense in (None, "", "soon", "-5", "1.5e9"):
        assert retry_after_ms(nonsense, now) is None


@pytest.mark.parametrize(
    "headers, body, waited",
    [
        ({"Retry-After": "2"}, {}, 2.0),  # only the header (Matrix v1.10+)
        ({"Retry-After": "9"}, {"retry_after_ms": 1500}, 1.5),  # the body, when it says
        ({}, {}, 5.0),  # neither: nio's own default
    ],
)
async def test_a_rate_limited_send_waits_as_asked_then_goes_through(monkeypatch, headers, body, waited):
    calls = []

    async def send(request: web.Request) -> web.Response:
        calls.append(request.match_info["txn"])
        if len(calls) == 1:
            return web.json_response({"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests", **body}, status=429, headers=headers)
        return web.json_response({"event_id": "$sent"})

    app = web.Application()
    app.router.add_put("/_matrix/client/v3/rooms/{room}/send/{type}/{txn}", send)
    slept = []
    real_sleep = asyncio.sleep

    async def sleep(seconds, *args, **kwargs):  # nio's wait, recorded instead of spent
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(nio.client.async_client.asyncio, "sleep", sleep)
    async with TestServer(app) as server:
        client = Client(str(server.make_url("")), "@ako:a.test", config=nio.AsyncClientConfig(encryption_enabled=False))
        client.access_token = "token"
        try:
            resp = await client.room_send("!room:a.test", "m.room.message", {"msgtype": "m.notice", "body": "hi"}, tx_id="t1")
        finally:
            await client.close()
    assert isinstance(resp, nio.RoomSendResponse) and resp.event_id == "$sent"
    assert calls == ["t1", "t1"]  # the same transaction id: a resend the server deduplicates
    assert waited in slept
