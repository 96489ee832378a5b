"""Scheduled reminders: many due in the same minute, each sent exactly once, and how late; and ten
due at once, against matrix-reminder-bot in the same minute.

**1,000 in one minute** (3 class rooms + personal ones): the automatic reminders before a due
time, which is what a deadline brings — for every assignment, a general notice in its class room
and a personal one in the work room of each learner who has not handed in. Assignments titled
``Bench reminder NNNN`` are written with Ako's own repository into the rush's three classes while
Ako is stopped, all due one hour after the same minute boundary (so their 1-hour reminders fall
due together, and the 24-hour ones were never owed); enough of them for ``count`` messages. Ako
is restarted and its scheduler reads them at start. The teachers read the class rooms, every
learner their own work room; lateness = arrival at that client − the minute (delivery included).

**10 at once vs the peer**: a teacher types ten ``!remind <minute> …`` into Ako in the class room
and ten ``!remindme <minute>; …`` to matrix-reminder-bot (its own process, config and account, on
the same homeserver) in a room with it, all for the same minute; the same client notes when each
arrives.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import uuid
from collections import Counter
from urllib.parse import quote

import aiohttp

from storage.db import Database
from storage.repositories import Repositories

from .cluster import PASSWORD, World, _ro, declared, wait_joined
from .stats import percentile

REPO = Path(__file__).resolve().parent.parent
_TEXT = re.compile(r"Bench reminder (\d{4,})")
OFFSET = timedelta(hours=1)  # the smallest of Ako's default reminder_offsets (24h, 1h)


def _class_room(db: Path, code: str) -> tuple[int, str, str]:
    with _ro(db) as con:
        row = con.execute(
            "SELECT c.id, r.room_id, c.timezone FROM classes c JOIN rooms r ON r.class_id = c.id AND r.kind = 'class' "
            "WHERE c.code = ?",
            (code,),
        ).fetchone()
    if row is None:
        raise RuntimeError(f"no class room recorded for {code}")
    return row


def next_minute(after_s: float) -> datetime:
    """The first whole minute at least ``after_s`` seconds from now (UTC)."""
    now = datetime.now(timezone.utc)
    return (now + timedelta(seconds=after_s)).replace(second=0, microsecond=0) + timedelta(minutes=1)


async def due_in_one_minute(world: World, count: int, budget, log, profiler=None) -> dict:
    if not declared("assign new") or not (REPO / "bot" / "scheduler.py").exists():
        return {"skipped": "no !assign new command or bot/scheduler.py yet"}
    classes = world.classes[:3]
    rooms = {k.code: await asyncio.to_thread(_class_room, world.ako_db, k.code) for k in classes}
    for k in classes:  # the teacher reads the class room
        await k.teacher.join(rooms[k.code][1])
    per_assignment = sum(1 + len(k.learners) for k in classes) / len(classes)  # messages one due time brings
    assignments_per_class = max(1, math.ceil(count / (len(classes) * per_assignment)))

    due = next_minute(45)
    await asyncio.to_thread(world.ako.stop, 10)
    db = await Database.open(world.ako_db)
    expected: dict[tuple[str, int], None] = {}  # (room, number): one message each
    now = datetime.now(timezone.utc)
    n = 0
    try:
        repos = Repositories.over(db)
        async with db.transaction():
            for k in classes:
                class_id, room_id, _ = rooms[k.code]
                for _ in range(assignments_per_class):
                    n += 1
                    a = await repos.assignments.create(
                        class_id=class_id, title=f"Bench reminder {n:04d}", description="", points=10, due_at=due + OFFSET,
                        cutoff_at=None, publish_at=None, by=k.teacher.user_id, at=now,
                    )
                    await repos.assignments.mark_published(a.id, now)
                    expected[(room_id, n)] = None
                    for learner in k.learners:
                        expected[(learner.work_room, n)] = None
    finally:
        await db.close()
    total = len(expected)
    await asyncio.to_thread(world.ako.start)
    log(f"reminders: {n} assignments due at {(due + OFFSET).astimezone().strftime('%H:%M')}: {total} reminders at "
        f"{due.astimezone().strftime('%H:%M:%S')}: {n} in {len(classes)} class rooms, {total - n} in work rooms; Ako restarted")

    readers = [(k.teacher, rooms[k.code][1]) for k in classes] + [(l.user, l.work_room) for k in classes for l in k.learners]
    due_ts = due.timestamp()
    limit = time.monotonic() + (due_ts - time.time()) + max(180.0, total * 0.3)
    seen: dict[tuple[str, int], list[float]] = {}

    def scan() -> None:
        seen.clear()
        for user, room_id in readers:
            for ev in user.timeline(room_id):
                m = _TEXT.search(str((ev.get("content") or {}).get("body", "")))
                if ev.get("sender") == world.ako_id and m and ev.get("type") == "m.room.message":
                    seen.setdefault((room_id, int(m.group(1))), []).append(user.arrived_wall.get(ev["event_id"], time.time()))

    await asyncio.sleep(max(0.0, due_ts - time.time() - 1))
    handle = profiler.start("reminders", world.ako.pid) if profiler else None
    while time.monotonic() < limit and budget.allows(10):
        scan()
        if len(seen.keys() & expected.keys()) >= total:
            break
        await asyncio.sleep(0.5)
    if profiler:
        profiler.stop(handle)
    await asyncio.sleep(5)  # a duplicate would show up now
    scan()
    got = {key: times for key, times in seen.items() if key in expected}
    firsts = [min(times) - due_ts for times in got.values()]
    try:
        floor = await homeserver_floor(world, Counter(room for room, _ in expected))
    except Exception as e:  # the figure above stands without it
        floor = {"error": f"{type(e).__name__}: {e}"}
    in_class = [min(t) - due_ts for (room, _), t in got.items() if room in {r[1] for r in rooms.values()}]
    return {
        "count": total,
        "classes": len(classes),
        "class_room_messages": n,
        "work_room_messages": total - n,
        "due": due.isoformat(),
        "sent_once": sum(1 for t in got.values() if len(t) == 1),
        "missing": total - len(got),
        "duplicates": sum(len(t) - 1 for t in got.values()),
        "early": sum(1 for x in firsts if x < 0),
        "lateness_p50_s": round(percentile(firsts, 50), 2),
        "lateness_p99_s": round(percentile(firsts, 99), 2),
        "lateness_max_s": round(max(firsts), 2) if firsts else None,
        "class_rooms_lateness_p99_s": round(percentile(in_class, 99), 2),
        "homeserver_floor": floor,
        "how": (f"{n} assignments due one hour after the same minute in {len(classes)} classes: each brings a notice in its "
                "class room and a personal reminder in every learner's work room (written with Ako's repository while it "
                "was stopped, then Ako restarted)"),
    }


async def homeserver_floor(world: World, per_room: Counter, at_once: int = 8) -> dict:
    """The same number of messages into the same rooms, sent with a plain HTTP client as Ako's
    account (a second device), ``at_once`` rooms at a time and each room in order, as Ako's outbox
    sends: what the homeserver alone takes for them, on this machine, in this minute."""
    _, token = await asyncio.to_thread(world.hs_a.register, "ako", PASSWORD)
    headers = {"Authorization": f"Bearer {token}"}
    slots = asyncio.Semaphore(at_once)
    async with aiohttp.ClientSession(headers=headers) as http:

        async def room(room_id: str, n: int) -> None:
            async with slots:
                for i in range(n):
                    url = f"{world.hs_a.client_url}/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/floor.{uuid.uuid4().hex}"
                    async with http.put(url, json={"msgtype": "m.notice", "body": f"(bench: homeserver floor {i})"}) as resp:
                        if resp.status != 200:
                            raise RuntimeError(f"{resp.status} {await resp.text()}")

        t0 = time.monotonic()
        await asyncio.gather(*(room(r, n) for r, n in per_room.items()))
        seconds = time.monotonic() - t0
    total = sum(per_room.values())
    return {"messages": total, "rooms": len(per_room), "at_once": at_once, "seconds": round(seconds, 2), "per_s": round(total / seconds, 1)}


# --- ten at once, against matrix-reminder-bot ---------------------------------------------------


async def ten_at_once(world: World, peer, count: int, log) -> dict:
    """``count`` reminders for the same minute to Ako (``!remind`` in a class room) and to the peer
    (``!remindme`` in a room with it), typed by the same teacher; lateness of each at that client."""
    if not declared("remind"):
        return {"skipped": "no !remind command"}
    k = world.classes[0]
    teacher = k.teacher
    _, class_room, tz = await asyncio.to_thread(_class_room, world.ako_db, k.code)
    await teacher.join(class_room)
    resp = await teacher.client.room_create(name="Reminders with the peer", invite=[peer.user_id])
    peer_room = getattr(resp, "room_id", None)
    if peer_room is None:
        return {"why_not": f"could not make a room with matrix-reminder-bot: {resp}"}
    await wait_joined(teacher, peer_room, peer.user_id, timeout=120)

    due = next_minute(60 + count * 3)
    at_ako = due.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    at_peer = due.strftime("%Y-%m-%d %H:%M:%S")  # the peer reads times in its configured zone: UTC
    for i in range(count):
        reply = await teacher.command(class_room, f"!remind {at_ako} Ako reminder {i:02d}: lab books out.", timeout=60)
        if "I'll remind" not in reply["body"]:
            return {"why_not": f"Ako answered !remind with {reply['body'][:200]!r}"}
        mark = teacher.mark(peer_room)
        await teacher.send(peer_room, f"!remindme {at_peer}; Peer reminder {i:02d}: lab books out.")
        try:
            await teacher.wait_for(peer_room, lambda e: e.get("sender") == peer.user_id, timeout=60, since=mark)
        except TimeoutError:
            return {"why_not": "matrix-reminder-bot did not answer !remindme within 60 s (its log: " + peer.log_tail() + ")"}
    log(f"peer reminders: {count} to Ako and {count} to matrix-reminder-bot, due {due.astimezone().strftime('%H:%M:%S')}")
    due_ts = due.timestamp()
    pattern = {"ako": re.compile(r"Ako reminder (\d\d)"), "peer": re.compile(r"Peer reminder (\d\d)")}
    where = {"ako": (class_room, world.ako_id), "peer": (peer_room, peer.user_id)}
    arrivals: dict[str, dict[int, float]] = {"ako": {}, "peer": {}}
    deadline = time.monotonic() + (due_ts - time.time()) + 120
    while time.monotonic() < deadline:
        for who, (room, sender) in where.items():
            for ev in teacher.timeline(room):
                if ev.get("sender") != sender or ev.get("origin_server_ts", 0) / 1000 < due_ts - 5:
                    continue
                # Ako sends reminders due together for one room as one message: each counts when it arrives
                for m in pattern[who].finditer(str((ev.get("content") or {}).get("body", ""))):
                    arrivals[who].setdefault(int(m.group(1)), teacher.arrived_wall.get(ev["event_id"], time.time()) - due_ts)
        if all(len(a) >= count for a in arrivals.values()):
            break
        await asyncio.sleep(0.2)

    def summary(who: str) -> dict:
        late = sorted(arrivals[who].values())
        return {"arrived": len(late), "lateness_median_s": round(percentile(late, 50), 3) if late else None,
                "lateness_max_s": round(max(late), 3) if late else None, "lateness_s": [round(x, 3) for x in late]}

    return {
        "count": count, "due": due.isoformat(), "ako": summary("ako"), "peer": summary("peer"), "peer_version": peer.version,
        "how": "the same teacher's client; Ako: !remind in the class room; matrix-reminder-bot: !remindme in a room with it",
    }
