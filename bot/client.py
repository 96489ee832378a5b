"""matrix-nio's client, with two things Ako needs that nio does not do: read how long to wait after
a 429 from the ``Retry-After`` header, and keep the cross-signing keys of nio's key queries.

nio retries a rate-limited request by itself, after the ``retry_after_ms`` of the error body (or
5 s when there is none). Since Matrix v1.10 a server may send the wait only as the HTTP header;
Synapse sends both. So: when the body has no ``retry_after_ms``, the header's seconds (or date)
become it, and nio waits exactly as long as the server asked.

nio reads only the device keys of a ``/keys/query`` answer; the master and self-signing keys in it
decide whose devices get room keys (bot/device_trust.py), so the answer is kept for that.

Every try of a message send (an event, a redaction, a state event: what the homeserver's
message rate limit counts) goes through ``rate_limit`` when one is set (bot/sender.py's
``RateLimit``): while the server refuses for rate, the tries go one at a time.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import nio


_MESSAGE_SEND = re.compile(r"/rooms/[^/]+/(send|redact|state)/")


class Client(nio.AsyncClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._key_queries: list[dict] = []
        self.rate_limit = None  # bot/rate_limit.py's RateLimit, when messages are sent through the outbox

    async def send(self, method, path, data=None, headers=None, trace_context=None, timeout=None):
        gate = self.rate_limit if method == "PUT" and _MESSAGE_SEND.search(path) else None
        if gate is None:
            return await super().send(method, path, data, headers, trace_context, timeout)
        await gate.before()
        try:
            resp = await super().send(method, path, data, headers, trace_context, timeout)
        except BaseException:
            gate.after(None)
            raise
        wait = None
        if resp.status == 429:
            try:
                wait = (await resp.json()).get("retry_after_ms")  # aiohttp keeps the body for nio
            except Exception:
                pass
            wait = wait or retry_after_ms(resp.headers.get("Retry-After"))
        gate.after(resp.status, wait)
        return resp

    def take_key_queries(self) -> list[dict]:
        """The /keys/query answers nio received since the last call, whole."""
        taken, self._key_queries = self._key_queries, []
        return taken

    async def create_matrix_response(self, response_class, transport_response, data=None, save_to=None):
        resp = await super().create_matrix_response(response_class, transport_response, data, save_to)
        if response_class is nio.KeysQueryResponse and isinstance(resp, nio.KeysQueryResponse):
            raw = await transport_response.json()  # aiohttp keeps the body nio already read
            if isinstance(raw, dict):
                self._key_queries.append(raw)
        if transport_response.status == 429 and isinstance(resp, nio.ErrorResponse) and not resp.retry_after_ms:
            wait = retry_after_ms(transport_response.headers.get("Retry-After"))
            if wait is not None:
                resp.retry_after_ms = wait
        return resp


def retry_after_ms(header: str | None, now: datetime | None = None) -> int | None:
    """``Retry-After: 3`` or ``Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`` → milliseconds (at least 1)."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return max(1, int(header) * 1000)
    try:
        at = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return max(1, int((at - (now or datetime.now(timezone.utc))).total_seconds() * 1000))
