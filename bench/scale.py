"""Many rooms for the scale figures, built the quick way.

Driving the bot with ``!class new`` / ``!join`` costs about a second a room here; instead the
rooms are created with the bot's own account (a second device of it) through the client-server
API, with the same initial state and power levels as Ako's gateway gives its rooms, while Ako
runs and sees itself join them. Each batch is shaped like a class of 30 learners (space, class
room, staff room, one work room per learner, each inviting its learner or teacher: half of
the learners on the other server). The matching records (class, members, rooms, three
assignments with submissions) are written into Ako's SQLite while it is stopped; then Ako is
started once to write them into their rooms (the records journal, issue 19: a deployment writes
each record into its room as it is made, so after running it has none waiting) and stopped
again, before the restart that is measured. Without that step the measured restart would route
and send every filler room's records (~2,000 events at 1,000 rooms): a one-off no running
deployment meets at a restart (bench/RESULTS.md). Learners come from a pool of 30 accounts shared by all the filler
classes; the space-child links and the class-record state events are left out.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Callable

import nio

from bot.gateway import CREATOR_POWER_VERSIONS, MatrixGateway

from .cluster import PASSWORD, World
from .records import ClassRecord, insert_classes

CLASS_SIZE = 30
TEACHER_POWER = 50


@dataclass
class Filler:
    world: World
    log: Callable[[str], None]
    concurrency: int = 4
    client: nio.AsyncClient | None = None
    gateway: MatrixGateway | None = None
    pool: list[str] = field(default_factory=list)
    pending: list[ClassRecord] = field(default_factory=list)
    created: int = 0
    seconds: float = 0.0
    _classes: int = 0

    async def open(self) -> None:
        w = self.world
        user_id, token = await asyncio.to_thread(w.hs_a.login, "ako", PASSWORD)
        self.client = nio.AsyncClient(w.hs_a.client_url, user_id, config=nio.AsyncClientConfig(max_limit_exceeded=0, max_timeouts=2, request_timeout=120))
        self.client.access_token = token
        who = await self.client.whoami()
        self.client.restore_login(user_id, getattr(who, "device_id", "") or "", token)
        resp = await self.client.send("GET", "/_matrix/client/v3/capabilities", headers={"Authorization": f"Bearer {token}"})
        default_version = (await resp.json())["capabilities"]["m.room_versions"]["default"]
        self.gateway = MatrixGateway(self.client, user_id, w.hs_a.server_name, default_version in CREATOR_POWER_VERSIONS)
        half = CLASS_SIZE // 2
        registered = await asyncio.gather(
            *(asyncio.to_thread(hs.register, f"pool{tag}{i:02d}", PASSWORD) for tag, hs in (("a", w.hs_a), ("b", w.hs_b)) for i in range(half))
        )
        self.pool = [uid for uid, _ in registered]

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    async def joined(self) -> int:
        resp = await self.client.joined_rooms()
        if isinstance(resp, nio.ErrorResponse):
            raise RuntimeError(f"joined_rooms: {resp.message}")
        return len(resp.rooms)

    async def grow_to(self, target: int, deadline: float) -> int:
        """Create rooms until the bot is in ``target`` of them (or the deadline passes); returns the count."""
        have = await self.joined()
        t0 = time.monotonic()
        sem = asyncio.Semaphore(self.concurrency)
        w = self.world
        teachers = [t.user_id for t in w.teachers]

        async def room(name: str, invite: str, *, space: bool = False, private: bool = False, power: dict | None = None):
            if time.monotonic() > deadline:
                return None
            async with sem:
                room_id = await self.gateway.create_room(
                    name=name, space=space, invite=[invite], power=power or {invite: TEACHER_POWER},
                    history_visibility="joined" if private else "shared", events_default=TEACHER_POWER if space else 0,
                )
                self.created += 1
                return room_id

        while have < target and time.monotonic() < deadline:
            self._classes += 1
            code = f"FILL{self._classes:03d}"
            name = f"Filler class {self._classes}"
            teacher = teachers[self._classes % len(teachers)]
            learners = self.pool[: max(0, min(CLASS_SIZE, target - have - 3))]
            specs = [
                ("space", None, room(name, teacher, space=True)),
                ("class", None, room(name, teacher)),
                ("staff", None, room(f"{name} — staff", teacher, private=True)),
            ] + [
                ("work", u, room(f"{name} — work of {u}", u, private=True, power={u: 0, teacher: TEACHER_POWER}))
                for u in learners
            ]
            ids = await asyncio.gather(*(coro for _, _, coro in specs))
            rooms = [(rid, kind, owner) for (kind, owner, _), rid in zip(specs, ids) if rid is not None]
            have += len(rooms)
            self.pending.append(
                ClassRecord(name, code, teacher, learners, w.hs_a.server_name, rooms, assignments=3, submitted=0.5)
            )
        self.seconds += time.monotonic() - t0
        count = await self.joined()
        self.log(f"filler: the bot is in {count} rooms ({self.created} created so far, {self.created / max(self.seconds, 1e-9):.1f} rooms/s)")
        return count

    def backlog(self) -> tuple[int, int]:
        """Ako's unsent outbox rows and changes waiting in record_log (read-only)."""
        con = sqlite3.connect(f"file:{self.world.ako_db}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute("SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL), (SELECT count(*) FROM record_log)").fetchone()
        finally:
            con.close()

    async def written_into_rooms(self, command: Callable, timeout: float = 900) -> dict:
        """Start the stopped Ako, have it write the filler's records into their rooms as it would
        have written them when they were made, and stop it: what a deployment that has been running
        looks like at a restart. ``command`` is awaited once Ako runs (its commit routes the
        waiting records to their rooms through the outbox)."""
        t0 = time.monotonic()
        await asyncio.to_thread(self.world.ako.start)
        await command()
        unsent, waiting = await asyncio.to_thread(self.backlog)
        queued = unsent
        while unsent and time.monotonic() - t0 < timeout:
            await asyncio.sleep(1)
            unsent, waiting = await asyncio.to_thread(self.backlog)
        seconds = time.monotonic() - t0
        await asyncio.to_thread(self.world.ako.stop, 10)
        self.log(f"filler: Ako wrote the records into their rooms: {queued} events queued, sent in {seconds:.0f} s"
                 f"{'' if not unsent else f' ({unsent} still unsent at the time limit)'}; {waiting} changes wait in record_log")
        return {"record_events": queued, "seconds": round(seconds, 1), "unsent_left": unsent, "record_log_left": waiting}

    def write_rows(self) -> int:
        """Write the pending classes' records (call while Ako is stopped). Returns how many classes."""
        if not self.pending:
            return 0
        con = sqlite3.connect(self.world.ako_db, timeout=30)
        try:
            con.execute("PRAGMA foreign_keys=ON")
            insert_classes(con, self.pending)
        finally:
            con.close()
        n, self.pending = len(self.pending), []
        return n
