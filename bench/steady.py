"""Ako's memory and database over many handled events: do they stay flat?

The learners of the rush send ordinary chat messages in their work rooms, as fast as the
homeserver takes them (``concurrency`` at a time; at most ``minutes`` for the phase), with a read command every
``command_every``-th message (so the outbox gets rows too). After every tenth of the events, one
learner sends a command and waits for its answer (Ako has caught up), and Ako's resident memory,
its database's size (the bytes its pages hold; the file and WAL beside it) and the rows of ``processed_events`` and ``outbox``
are read, and what a copy of the database holds once the retention sweep has run 31 days later
and the copy is vacuumed (what the sweep bounds it to). Growth is measured from the first sample (after a tenth: the
warm-up) to the last.

If the time limit stops it before ``total`` events, the growth is extrapolated to ``total`` from
the measured slope, and the result says so. At the end a copy of the database is swept as the
retention sweep would sweep it 31 days later (storage/retention.py), to show what stays.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from storage import retention
from storage.db import Database

from .cluster import World, _ro, rss_mb
from .timed_user import gather_limited


def file_bytes(path: Path) -> int:
    """``ako.db`` and its WAL on disk (the WAL grows to SQLite's checkpoint size, ~4 MB, and stays)."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def _rows(path: Path) -> dict[str, int]:
    """Rows of the tables that could grow with traffic, and the bytes the database's pages hold
    (pages in use × page size, read through the WAL: what a VACUUM would leave)."""
    with _ro(path) as con:
        rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("processed_events", "outbox", "outbox_about")}
        pages, free, size = (con.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size"))
    return {**rows, "db_bytes": (pages - free) * size}


def growth(first: float, last: float) -> float:
    return (last - first) / first if first else float("nan")


def summarise(samples: list[dict], asked: int) -> dict:
    """Growth of RSS and DB size from the first sample to the last, extrapolated to ``asked``
    handled events when fewer were handled (from the slope between the first and last sample).
    The DB figure is the bytes its pages hold; the file with its WAL is shown beside it."""
    if len(samples) < 2:
        return {"rss_growth": float("nan"), "db_growth": float("nan"), "extrapolated": False}
    a, b = samples[0], samples[-1]
    span = b["handled"] - a["handled"]
    out = {"extrapolated": b["handled"] < asked}
    for key, name in (("rss_mb", "rss"), ("db_bytes", "db"), ("kept_bytes", "kept")):
        if key not in a or key not in b:
            continue
        slope = (b[key] - a[key]) / span if span else 0.0
        end = b[key] + slope * max(0, asked - b["handled"])
        out[f"{name}_per_10k"] = round(slope * 10_000, 3 if key == "rss_mb" else 0)
        out[f"{name}_growth"] = round(growth(a[key], end), 4)
    return out


async def sweep_copy(db_path: Path, days: int = 31) -> dict:
    """What the retention sweep leaves of a copy of the database ``days`` later."""
    with tempfile.TemporaryDirectory(prefix="ako-sweep-") as tmp:
        copy = Path(tmp) / "ako.db"
        src = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        dst = sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        dst.close()
        before = _rows(copy)
        db = await Database.open(copy)
        try:
            swept = await retention.sweep(db, datetime.now(timezone.utc) + timedelta(days=days))
        finally:
            await db.close()
        vacuum = sqlite3.connect(copy)  # pages the deleted rows half-emptied are packed: what the rows that stay take
        vacuum.execute("VACUUM")
        vacuum.close()
        return {"days_later": days, "before": before, "after": _rows(copy), "deleted_processed": swept.processed_events,
                "deleted_outbox": swept.outbox_deleted, "emptied_outbox": swept.outbox_emptied}


async def handled_events(world: World, total: int, read_line, expect: str, budget, log, *, samples: int = 10,
                         concurrency: int = 16, command_every: int = 100, minutes: float = 20.0) -> dict:
    learners = world.learners()
    if not learners:
        return {"skipped": "no learners"}
    probe = learners[0]
    chunk = max(1, total // samples)
    sent = 0
    points: list[dict] = []
    failures = 0
    t_start = time.monotonic()
    stop_at = t_start + minutes * 60
    while sent < total:
        n = min(chunk, total - sent)
        last_chunk_s = points[-1]["chunk_s"] if points else 0.0
        if points and (not budget.allows(last_chunk_s * 1.2 + 60) or time.monotonic() + last_chunk_s > stop_at):
            log(f"steady: time limit ({minutes:g} minutes for this phase, or the run's) after {sent} of {total} events; "
                "the rest is extrapolated")
            break
        t0 = time.monotonic()
        base = sent

        async def one(i: int) -> None:
            nonlocal failures
            learner = learners[i % len(learners)]
            k = base + i
            body = read_line(learner) if k % command_every == command_every - 1 else f"Chat {k}: has anyone started the lab report?"
            try:
                await learner.user.send(learner.work_room, body)
            except Exception:
                failures += 1

        await gather_limited(concurrency, [one(i) for i in range(n)])
        sent += n
        send_s = time.monotonic() - t0
        reply = await probe.user.timed(probe.work_room, read_line(probe), timeout=600)  # Ako has caught up
        chunk_s = time.monotonic() - t0
        rows = await asyncio.to_thread(_rows, world.ako_db)
        mem = rss_mb(world.ako.pid)
        try:  # what stays once the retention window has passed: the bound the sweep keeps the database to
            kept = {"kept_bytes": (await sweep_copy(world.ako_db))["after"]["db_bytes"]}
        except Exception as e:
            kept = {}
            log(f"steady: could not sweep a copy ({type(e).__name__}: {e})")
        points.append({
            "handled": sent, "rss_mb": mem["rss_mb"], "hwm_mb": mem["hwm_mb"], "file_bytes": file_bytes(world.ako_db),
            **rows, **kept, "chunk_s": round(chunk_s, 1), "send_s": round(send_s, 1), "events_per_s": round(n / chunk_s, 1),
            "probe_ms": round(reply.latency * 1000) if reply.latency is not None else None,
        })
        p = points[-1]
        log(f"steady: {sent} events; RSS {p['rss_mb']} MB, DB {p['db_bytes'] / 1e6:.1f} MB, "
            f"{p['processed_events']} processed rows, {p['outbox']} outbox rows; {p['events_per_s']}/s")
    result = {
        "asked": total, "handled": sent, "send_failures": failures, "samples": points,
        "seconds": round(time.monotonic() - t_start), "concurrency": concurrency, "command_every": command_every,
        **summarise(points, total),
    }
    try:
        result["after_sweep"] = await sweep_copy(world.ako_db)
    except Exception as e:  # the figure above stands without it
        result["after_sweep"] = {"error": f"{type(e).__name__}: {e}"}
    return result
