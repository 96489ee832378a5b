"""A command's path inside Ako, from a sync batch in hand to its reply handed to the homeserver,
without a homeserver: ``Ako.handle_sync`` over a real on-disk SQLite (WAL, synchronous=FULL),
the recording fake gateway, and the real outbox sender whose ``send`` only notes the moment.

A learner in their work room alternates ``!assignments`` and ``!submit A1 …`` (as the round-trip
phase of ``bench.run`` does); each go is timed from ``handle_sync`` to the reply's send, and the
SQL statements and write transactions of each command are counted. The sender's sent-marks are
committed between goes (as the 50 ms pause does between a learner's commands), outside the timing.
The class has the three assignments ``bench.run`` sets. No homeserver, no encryption, no sync loop
around it: what is left is Ako's own work and SQLite's (each statement is a hand-off to aiosqlite's
thread, the commit an fsync).

    python -m bench.handler_path [--n 1000] [--show]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from bench.cluster import ASSIGNMENTS
from bot.config import Config
from bot.runtime import Ako
from storage.db import Database
from tests.unit.fakes import BOT, LEARNER_A, OPERATOR, TEACHER_A, FakeRooms, FrozenClock, StatementCounter, classroom
from tests.unit.outbox_fakes import OutboxHarness

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)
COMMANDS = ("!assignments", "!submit A1 Bench answer number {n}: the mitochondria is the powerhouse of the cell.")


class NoKeys:
    """Unencrypted rooms, as the bench's work rooms are: nothing waits for a key."""

    async def retry_waiting(self, handle) -> None:
        pass


def one_command(token: str, room_id: str, text: str, n: int):
    """A sync response holding one message in one joined room, in the shape nio gives it."""
    event = {"type": "m.room.message", "sender": LEARNER_A, "event_id": f"$bench{n}", "origin_server_ts": 1,
             "content": {"msgtype": "m.text", "body": text}}
    timeline = SimpleNamespace(events=[SimpleNamespace(source=event)], limited=False, prev_batch="p")
    return SimpleNamespace(next_batch=token, rooms=SimpleNamespace(invite={}, leave={}, join={room_id: SimpleNamespace(timeline=timeline)}))


async def measure(n: int, workdir: Path) -> dict:
    db = await Database.open(workdir / "ako.db")
    config = Config.model_validate({
        "matrix": {"homeserver": "http://127.0.0.1:1", "user_id": BOT, "password": "secret-pw"},
        "bot": {"operators": [OPERATOR], "data_dir": str(workdir), "timezone": "Pacific/Auckland"},
    })
    clock = FrozenClock(NOW)
    ako = Ako(config, clock=clock)
    rooms = FakeRooms()
    ako.assemble(db, client=None, gateway=rooms)
    ako.e2ee = NoKeys()
    h = OutboxHarness(db, clock, rooms)
    c = await classroom(h)
    for title in ASSIGNMENTS:  # as bench.run's classes have
        await h.run(TEACHER_A, c.class_room, f"!assign new {title} due 2026-12-20 17:00 points 20")
    await h.deliver()
    work = c.work[LEARNER_A]
    await ako.repos.sync.mark_joined(work, NOW)
    await ako.repos.sync.load_joined()
    await ako.repos.sync.save_next_batch("s0")

    arrived = asyncio.Event()
    sent: list[str] = []
    now_counting: list[StatementCounter] = []
    at_send: list[int] = []  # statements counted until the reply was handed over

    async def send(item):
        sent.append(item.content.get("body", ""))
        at_send[:] = [len(now_counting[0].statements)] if now_counting else []
        arrived.set()
        return SimpleNamespace(event_id=f"$sent{len(sent)}")

    ako.sender.send = send
    sender = asyncio.create_task(ako.sender.run())
    times: dict[str, list[float]] = {c: [] for c in COMMANDS}
    in_handler: dict[str, list[float]] = {c: [] for c in COMMANDS}
    counts: dict[str, tuple[int, int]] = {}
    shown: dict[str, list[str]] = {}
    try:
        for i in range(-10, n):  # ten to warm up
            for command in COMMANDS:
                k = len(sent) + 1
                token = f"s{k}"
                arrived.clear()
                with StatementCounter(db) as counted:
                    now_counting[:] = [counted]
                    t0 = time.perf_counter()
                    await ako.handle_sync(one_command(token, work, command.format(n=i), k), f"s{k - 1}")
                    t1 = time.perf_counter()
                    await asyncio.wait_for(arrived.wait(), 10)
                    t2 = time.perf_counter()
                if i >= 0:
                    times[command].append(t2 - t0)
                    in_handler[command].append(t1 - t0)
                    counts[command] = (at_send[0], counted.transactions)
                    shown[command] = counted.statements[: at_send[0]]
                await ako.sender.flush()
                await asyncio.sleep(0.005)  # the sender's look for more, after marking, is over before the next command
        assert sum("Received" in b for b in sent) == n + 10 and sum("Assignments of" in b for b in sent) == n + 10, sent[-2:]
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await db.close()

    def ms(xs: list[float], q: float) -> float:
        return round(statistics.quantiles(xs, n=100)[int(q) - 1] * 1000, 2) if q < 100 else round(max(xs) * 1000, 2)

    return {
        command.split()[0]: {
            "n": len(times[command]),
            "statements": counts[command][0], "write_transactions": counts[command][1],
            "to_send_median_ms": ms(times[command], 50), "to_send_p95_ms": ms(times[command], 95),
            "handle_sync_median_ms": ms(in_handler[command], 50),
            "statements_of_the_last": shown[command],
        }
        for command in COMMANDS
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="goes of each command (default 1000)")
    p.add_argument("--show", action="store_true", help="print the statements of each command's last go, up to its reply's send")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="ako-handler-path-") as d:
        result = asyncio.run(measure(args.n, Path(d)))
    print(f"{'command':14} {'n':>5} {'statements':>10} {'commits':>7} │ {'to send: median':>15} {'p95':>7} │ {'handle_sync median':>18}  (ms)")
    for name, r in result.items():
        print(f"{name:14} {r['n']:5} {r['statements']:10} {r['write_transactions']:7} │ {r['to_send_median_ms']:15} "
              f"{r['to_send_p95_ms']:7} │ {r['handle_sync_median_ms']:18}")
    for name, r in result.items() if args.show else ():
        print(f"\n{name}, with its reply's send:", *r["statements_of_the_last"], sep="\n  ")


if __name__ == "__main__":
    main()
