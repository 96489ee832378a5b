"""The smallest matrix-nio bot: the benchmark's physical limit.

It logs in, accepts every invite and answers ``!ping`` with an ``m.notice`` reply
(``m.relates_to.m.in_reply_to``); nothing else. No database, no parsing, no permissions:
what is left of its round trip is the homeservers, federation and matrix-nio itself.
Replies are sent concurrently, one task each, so a burst is answered as fast as the
homeserver takes them.

    AKO_ECHO_TOKEN=<access token> python -m bench.echo_bot \
        --homeserver http://127.0.0.1:8471 --user-id @echo:localhost:8481 --ready data/ako.ready

It writes ``--ready`` after its first sync (it skips the backlog, like Ako) and runs until
killed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import nio

# The same filter Ako syncs with (bot/runtime.py), so both bots ask the server for the same work.
SYNC_FILTER = {
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
    "room": {
        "state": {"lazy_load_members": True},
        "timeline": {"limit": 50},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
}


class EchoBot:
    def __init__(self, client: nio.AsyncClient):
        self.client = client
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def join(self, room_id: str) -> None:
        for attempt in range(8):  # a federated invite may not have reached our server's view yet
            resp = await self.client.join(room_id)
            if not isinstance(resp, nio.ErrorResponse):
                return
            await asyncio.sleep(0.2 * (attempt + 1))
        print(f"echo: could not join {room_id}: {resp.message}", file=sys.stderr, flush=True)

    async def pong(self, room_id: str, event_id: str) -> None:
        content = {"msgtype": "m.notice", "body": "pong", "m.relates_to": {"m.in_reply_to": {"event_id": event_id}}}
        resp = await self.client.room_send(room_id, "m.room.message", content)
        if isinstance(resp, nio.ErrorResponse):
            print(f"echo: reply in {room_id} failed: {resp.message}", file=sys.stderr, flush=True)

    def handle(self, resp: nio.SyncResponse, backlog: bool) -> None:
        for room_id in resp.rooms.invite:
            self.spawn(self.join(room_id))
        if backlog:
            return
        me = self.client.user_id
        for room_id, info in resp.rooms.join.items():
            for event in info.timeline.events:
                src = event.source
                content = src.get("content") or {}
                if (
                    src.get("type") == "m.room.message"
                    and src.get("sender") != me
                    and content.get("msgtype") == "m.text"
                    and str(content.get("body", "")).strip() == "!ping"
                ):
                    self.spawn(self.pong(room_id, src["event_id"]))

    async def run(self, ready: Path) -> None:
        token = None
        first = True
        while True:
            resp = await self.client.sync(timeout=0 if first else 30_000, since=token, sync_filter=SYNC_FILTER)
            if isinstance(resp, nio.ErrorResponse):
                print(f"echo: sync failed: {resp.message}", file=sys.stderr, flush=True)
                await asyncio.sleep(1)
                continue
            self.handle(resp, backlog=first)
            token = resp.next_batch
            if first:
                ready.write_text(token)
                first = False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--homeserver", required=True, help="client-server API base URL")
    parser.add_argument("--user-id", required=True)
    parser.add_argument("--ready", required=True, type=Path, help="file written once the bot is syncing")
    args = parser.parse_args()
    token = os.environ.get("AKO_ECHO_TOKEN")
    if not token:
        parser.error("set AKO_ECHO_TOKEN to the bot's access token")
    config = nio.AsyncClientConfig(
        max_limit_exceeded=0, max_timeouts=2, request_timeout=60, encryption_enabled=False, store_sync_tokens=False
    )
    client = nio.AsyncClient(args.homeserver, args.user_id, config=config)
    client.access_token = token
    who = await client.whoami()
    if isinstance(who, nio.ErrorResponse):
        raise SystemExit(f"echo: the access token was refused: {who.message}")
    client.restore_login(who.user_id, who.device_id or "", token)
    try:
        await EchoBot(client).run(args.ready)
    finally:
        await client.close()


if __name__ == "__main__":
    asyncio.run(main())
