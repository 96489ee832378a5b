"""Scheduled reminders: many due in the same minute, each sent exactly once, and how late.

The reminders are class reminders (what ``!remind <time> <text>`` records), spread over the
rush's three classes, all due at the same minute boundary. They are written with Ako's own
repository (storage/reminders.py) while Ako is stopped, so that the figure is about the
scheduler and the outbox rather than about typing 1,000 commands; Ako is then restarted and
its scheduler reads them at start. Each class's teacher joins the class room and notes when
each reminder reaches them: lateness = arrival − due time (so it includes delivery).
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from storage.db import Database
from storage.repositories import Repositories

from .cluster import World, _ro, declared
from .stats import percentile

REPO = Path(__file__).resolve().parent.parent
_TEXT = re.compile(r"Bench reminder (\d{4,})")
PEER = (
    "matrix-reminder-bot 0.4.0 installs from PyPI here (`pip download matrix-reminder-bot` fetched it and its "
    "dependencies, vodozemac wheels, no libolm needed); not run as a peer: optional, left out for time"
)


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


async def due_in_one_minute(world: World, count: int, budget, log, profiler=None) -> dict:
    if not declared("remind") or not (REPO / "bot" / "scheduler.py").exists():
        return {"skipped": "no !remind command or bot/scheduler.py yet"}
    classes = world.classes[:3]
    rooms = {k.code: await asyncio.to_thread(_class_room, world.ako_db, k.code) for k in classes}
    for k in classes:  # the teacher reads the class room
        await k.teacher.join(rooms[k.code][1])

    now = datetime.now(timezone.utc)
    due = (now + timedelta(seconds=45)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    await asyncio.to_thread(world.ako.stop, 10)
    db = await Database.open(world.ako_db)
    try:
        repos = Repositories.over(db)
        async with db.transaction():
            for i in range(count):
                k = classes[i % len(classes)]
                class_id, room_id, tz = rooms[k.code]
                await repos.reminders.add(
                    class_id=class_id, created_by=k.teacher.user_id, room_id=room_id,
                    text=f"Bench reminder {i:04d}: hand in your lab book.", next_at=due, timezone=tz, at=now,
                )
    finally:
        await db.close()
    await asyncio.to_thread(world.ako.start)
    log(f"reminders: {count} due at {due.astimezone().strftime('%H:%M:%S')}; Ako restarted")

    due_ts = due.timestamp()
    limit = time.monotonic() + (due_ts - time.time()) + max(180.0, count * 0.3)
    seen: dict[int, list[float]] = {}

    def scan() -> None:
        seen.clear()
        for k in classes:
            room_id = rooms[k.code][1]
            for ev in k.teacher.timeline(room_id):
                content = ev.get("content") or {}
                m = _TEXT.search(str(content.get("body", "")))
                if ev.get("sender") == world.ako_id and m:
                    seen.setdefault(int(m.group(1)), []).append(k.teacher.arrived_wall.get(ev["event_id"], time.time()))

    await asyncio.sleep(max(0.0, due_ts - time.time() - 1))
    handle = profiler.start("reminders", world.ako.pid) if profiler else None
    while time.monotonic() < limit and budget.allows(10):
        scan()
        if len(seen) >= count:
            break
        await asyncio.sleep(0.5)
    if profiler:
        profiler.stop(handle)
    await asyncio.sleep(5)  # a duplicate would show up now
    scan()
    firsts = [min(times) - due_ts for times in seen.values()]
    return {
        "count": count,
        "classes": len(classes),
        "due": due.isoformat(),
        "sent_once": sum(1 for t in seen.values() if len(t) == 1),
        "missing": count - len(seen),
        "duplicates": sum(len(t) - 1 for t in seen.values()),
        "early": sum(1 for x in firsts if x < 0),
        "lateness_p50_s": round(percentile(firsts, 50), 2),
        "lateness_p99_s": round(percentile(firsts, 99), 2),
        "lateness_max_s": round(max(firsts), 2) if firsts else None,
        "how": "class reminders written with Ako's repository while it was stopped, then Ako restarted",
        "peer": PEER,
    }
