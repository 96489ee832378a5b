"""The scheduler's clock across restarts and crashes (issues 4 and 5), with a bot of its own.

This module runs a second Ako process (its own account and database on school A's server) with
``reminder_grace = "15s"``, so that "missed by more than the grace" takes seconds to reach, not
an hour. Everything here goes through real Matrix: ``!remindme`` in a DM, the reminder arriving
(or not) in that DM, as the learner's client sees it.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.botproc import BotProcess, write_bot_config
from tests.matrix_user import MatrixUser, unique_localpart

from tests import reliability_doc

from .helpers import open_dm, wait_dead

GRACE = 10  # seconds
FIGURES: dict = {}  # docs/reliability.md's "clock" section, written if every test here passed


@pytest.fixture(scope="module")
async def clock(cluster, hs_a, tmp_path_factory):
    base = tmp_path_factory.mktemp("ako-clock")
    bot_id, _ = hs_a.register(unique_localpart("akoclock"), "ako-clock-password")
    cfg = write_bot_config(
        base / "config.toml", hs_a, bot_id, "ako-clock-password", [cluster.operator.user_id], base / "data",
        bot={"reminder_grace": f"{GRACE}s", "encryption": False},
    )
    proc = BotProcess(cfg, base / "data").start()
    user = await MatrixUser.create(hs_a, unique_localpart("kiri"))
    try:  # the bot answers only registered schools' users
        reply = await cluster.operator.command(await open_dm(cluster.operator, bot_id), f'!school add {hs_a.server_name} "Kura A"')
        assert "Registered" in reply["body"], reply["body"]
        dm = await open_dm(user, bot_id)
        yield proc, bot_id, user, dm
    finally:
        await user.close()
        proc.stop()
        reliability_doc.record("clock", dict(FIGURES), __file__)


def reminders_in(user: MatrixUser, dm: str, bot_id: str, text: str) -> list[dict]:
    return [
        ev for ev in user.timeline(dm)
        if ev["type"] == "m.room.message" and ev["sender"] == bot_id and text in (ev["content"].get("body") or "")
        and ev["content"].get("msgtype") == "m.notice" and "I'll remind you" not in ev["content"]["body"]
    ]


async def set_reminder(user: MatrixUser, dm: str, seconds: int, text: str) -> float:
    """``!remindme in <seconds> seconds <text>``; returns when it falls due (time.monotonic())."""
    reply = await user.command(dm, f"!remindme in {seconds} seconds {text}")
    due = time.monotonic() + seconds
    assert "I'll remind you here" in reply["body"], reply["body"]
    return due


async def answered_later(user: MatrixUser, dm: str) -> None:
    """A command sent now is answered. Ako sends a room's messages in order, so a second copy of a
    reminder, queued before this answer, would have arrived by then (the answer names no reminder)."""
    reply = await user.command(dm, "!help remindme")
    assert "remindme" in reply["body"], reply["body"]


def log_since_last_start(proc: BotProcess) -> str:
    return proc.log_text().rsplit("==== start", 1)[-1]


async def logged(proc: BotProcess, pattern: str, timeout: float = 30) -> re.Match:
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, log_since_last_start(proc))
        if m:
            return m
        assert time.monotonic() < deadline, f"the bot never logged {pattern!r}:\n{proc.log_tail()}"
        await asyncio.sleep(0.2)


async def test_a_reminder_missed_by_more_than_the_grace_is_dropped_and_logged(clock):
    proc, bot_id, user, dm = clock
    due = await set_reminder(user, dm, 3, "water the seedlings")
    proc.kill()
    await asyncio.sleep(max(0.0, due + GRACE + 3 - time.monotonic()))
    proc.start()
    await logged(proc, r"Scheduled sends: 0 on time, 0 late, 1 dropped")
    # the bot answers again (so its outbox has run) and still nothing came
    waiting = (await user.command(dm, "!reminders"))["body"]
    assert "water the seedlings" not in waiting and ("No reminders are waiting" in waiting or "Your own reminders" in waiting), waiting
    assert reminders_in(user, dm, bot_id, "water the seedlings") == []


async def test_ten_restarts_leave_the_job_count_unchanged_and_the_reminder_comes_once(clock):
    proc, bot_id, user, dm = clock
    due = await set_reminder(user, dm, 30, "feed the fish")
    await set_reminder(user, dm, 3 * 24 * 3600, "library books back")
    assert "daily" in (await user.command(dm, "!digest daily"))["body"]
    counts, began = [], time.monotonic()
    for i in range(10):
        (proc.kill if i % 2 else proc.stop)()  # a crash every other time, a clean stop otherwise
        proc.start()
        counts.append(int((await logged(proc, r"Timetable read: \d+ moments? in the next [^,]+, (\d+) scheduler jobs")).group(1)))
    assert time.monotonic() < due - 2, "ten restarts took longer than the reminder's 30 s"
    # the sweep, the two reminders and the digest: the same four jobs after every start
    assert counts == [4] * 10, counts
    FIGURES["clock_restarts"] = {"restarts": 10, "kills": 5, "jobs after each": counts, "seconds": round(time.monotonic() - began, 1)}

    await user.wait_for(dm, lambda e: e in reminders_in(user, dm, bot_id, "feed the fish"), since=0, timeout=due - time.monotonic() + 30)
    await answered_later(user, dm)
    assert len(reminders_in(user, dm, bot_id, "feed the fish")) == 1
    assert reminders_in(user, dm, bot_id, "library books back") == []
    assert "off" in (await user.command(dm, "!digest off"))["body"]


@pytest.mark.parametrize("point", ["reminder-due", "reminder-committed", "sent:2"])
async def test_a_reminder_survives_a_kill_at_each_point_and_comes_once(clock, point):
    proc, bot_id, user, dm = clock
    text = f"stretch before the {point.split(':')[0]} crash"
    proc.stop()
    proc.crash_at = point  # sent:2 — the first send is the reply to !remindme
    proc.start()
    try:
        await set_reminder(user, dm, 3, text)
        code = await wait_dead(proc, timeout=30)
    finally:
        proc.crash_at = None
    proc.start()
    await user.wait_for(dm, lambda e: e in reminders_in(user, dm, bot_id, text), since=0, timeout=30)
    await answered_later(user, dm)  # any duplicate would have arrived by now
    got = reminders_in(user, dm, bot_id, text)
    assert len(got) == 1, [e["content"]["body"] for e in got]
    FIGURES.setdefault("reminder_checks", []).append({"point": point.split(":")[0], "exit": code, "reminders": len(got)})

