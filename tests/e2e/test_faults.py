"""Nothing lost on the failure paths (issue 16, items 6 and 8): a second Ako talks to school A's
homeserver through a fault-injecting proxy on loopback (tests/faultproxy.py) — a request accepted
and never answered, a proxy's 502 without a Matrix error code — and is killed at crash points
inside the sync loop. Every command it was sent is answered once; nothing is dropped.

The figures join docs/reliability.md when ``AKO_RELIABILITY_DOC`` names it and every test here
passed (tests/reliability_doc.py).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from tests.botproc import BotProcess, write_bot_config
from tests.faultproxy import FaultProxy

from tests import reliability_doc

from .helpers import db_rows, open_dm

FIGURES: dict = {}  # docs/reliability.md's "faults" section, written if every test here passed

SEND = r"/send/m\.room\.message/"


@dataclass
class FaultBot:
    bot: BotProcess
    bot_id: str
    proxy: FaultProxy
    dm: str  # the operator's DM with it

    def rows(self, sql: str, params=()) -> list[tuple]:
        return db_rows(self, sql, params)

    async def restart(self, crash_at: str | None = None) -> None:
        await asyncio.to_thread(self.bot.stop)
        self.bot.crash_at = crash_at
        await asyncio.to_thread(self.bot.start)


def faults() -> dict:
    return FIGURES.setdefault("faults", {"hangs": 0, "502s": 0, "crash points": [], "commands": 0, "answered once": 0, "dropped": 0})


@pytest.fixture(scope="module")
async def fb(cluster, hs_a, hs_b, tmp_path_factory):
    base = tmp_path_factory.mktemp("faultbot")
    proxy = FaultProxy(hs_a.client_url)
    url = await asyncio.to_thread(proxy.start)
    bot_id, _ = await asyncio.to_thread(hs_a.register, "akofaults", "ako-faults-password")
    cfg = write_bot_config(
        base / "config.toml", hs_a, bot_id, "ako-faults-password", [cluster.operator.user_id], base / "data",
        matrix={"homeserver": url}, bot={"encryption": False},
    )
    bot = BotProcess(cfg, base / "data")
    await asyncio.to_thread(bot.start)
    operator = cluster.operator
    dm = await open_dm(operator, bot_id)
    reply = await operator.command(dm, f'!school add {hs_a.server_name} "Kura A"')
    assert "Registered" in reply["body"], reply["body"]
    try:
        yield FaultBot(bot, bot_id, proxy, dm)
    finally:
        f = faults()
        f["hangs"] += proxy.injected["hang"]
        f["502s"] += proxy.injected["502"]
        await asyncio.to_thread(bot.stop)
        await asyncio.to_thread(proxy.stop)
        reliability_doc.record("faults", dict(faults()), __file__)


def answers_to(user, room_id: str, event_id: str) -> list[dict]:
    return [n for n in user.notices(room_id) if ((n.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id") == event_id]


async def answered_once(user, room_id: str, event_ids: list[str], timeout: float) -> list[int]:
    """How many answers each command got, once every one has at least one (or the time is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(answers_to(user, room_id, e) for e in event_ids):
        await asyncio.sleep(0.5)
    # a duplicate would be queued before the answer to a command sent now, and Ako sends a room's
    # messages in order: once that answer is in, a duplicate would be too
    later = await user.send(room_id, "!schools")
    while not answers_to(user, room_id, later):
        assert time.monotonic() < deadline + 60, "no answer to a later !schools"
        await asyncio.sleep(0.2)
    counts = [len(answers_to(user, room_id, e)) for e in event_ids]
    f = faults()
    f["commands"] += len(event_ids)
    f["answered once"] += counts.count(1)
    f["dropped"] += counts.count(0)
    return counts


async def room_with_bot(operator, bot_id: str, name: str) -> str:
    resp = await operator.client.room_create(name=name, invite=[])
    room = resp.room_id
    operator.timeline(room)
    return room


async def invite(operator, room: str, bot_id: str) -> None:
    resp = await operator.client.room_invite(room, bot_id)
    assert type(resp).__name__ == "RoomInviteResponse", resp


async def bot_joined(operator, room: str, bot_id: str, timeout: float) -> None:
    await operator.wait_for(
        room, lambda e: e["type"] == "m.room.member" and e["state_key"] == bot_id and e["content"]["membership"] == "join",
        since=0, timeout=timeout,
    )


# --- item 6: the outbox


async def test_a_reply_refused_with_502_for_half_a_minute_arrives_once(cluster, fb):
    operator = cluster.operator
    rule = fb.proxy.fail("PUT", SEND)
    asked = await operator.send(fb.dm, "!schools")
    began = time.monotonic()
    while time.monotonic() - began < 30:  # twice as long as the sender used to keep trying
        await asyncio.sleep(1)
    tries = fb.proxy.caught(rule)
    fb.proxy.release(rule)
    counts = await answered_once(operator, fb.dm, [asked], timeout=60)
    assert tries >= 5, f"only {tries} sends were refused: the fault did not bite"
    assert counts == [1], counts
    assert "Kura A" in answers_to(operator, fb.dm, asked)[0]["body"]
    assert fb.bot.is_running()


async def test_a_reply_to_a_room_ako_was_removed_from_is_kept_as_undeliverable_and_reported(cluster, fb):
    operator = cluster.operator
    room = await room_with_bot(operator, fb.bot_id, "Kicked")
    await invite(operator, room, fb.bot_id)
    await bot_joined(operator, room, fb.bot_id, timeout=30)
    rule = fb.proxy.fail("PUT", SEND + ".*")  # hold every reply back
    asked = await operator.send(room, "!schools")
    deadline = time.monotonic() + 30
    while fb.proxy.caught(rule) == 0:
        assert time.monotonic() < deadline, "the reply was never tried"
        await asyncio.sleep(0.2)
    resp = await operator.client.room_kick(room, fb.bot_id, "testing undeliverable replies")
    assert type(resp).__name__ == "RoomKickResponse", resp
    fb.proxy.release(rule)
    deadline = time.monotonic() + 60
    while not fb.rows("SELECT 1 FROM outbox WHERE room_id = ? AND sent_at IS NOT NULL AND event_id IS NULL", (room,)):
        assert time.monotonic() < deadline, "the reply was neither sent nor given up"
        await asyncio.sleep(0.5)
    [(reason, waiting)] = fb.rows("SELECT last_error, (SELECT count(*) FROM outbox WHERE sent_at IS NULL) FROM outbox WHERE room_id = ?", (room,))
    assert reason.startswith("M_FORBIDDEN"), reason
    assert "Undeliverable" in fb.bot.log_text() and room in fb.bot.log_text()
    check = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot", "check", "--config", str(fb.bot.config_path)], capture_output=True, text=True, timeout=60
    )
    assert "could not be delivered" in check.stdout and room in check.stdout and "M_FORBIDDEN" in check.stdout, check.stdout + check.stderr
    after = await operator.command(fb.dm, "!schools")  # the queue goes on
    assert "Kura A" in after["body"]
    faults()["undeliverable"] = 1
    assert asked


# --- item 12: one person's flood


async def test_a_flood_of_failing_commands_is_answered_once_and_holds_nobody_up(cluster, fb, new_user, hs_a):
    flooder = await new_user(hs_a, "flood")
    room = await open_dm(flooder, fb.bot_id)
    sent = [await flooder.send(room, f"!nosuchcommand {i}") for i in range(130)]
    began = time.monotonic()
    other = await cluster.operator.command(fb.dm, "!schools", timeout=60)  # someone else, meanwhile
    other_s = time.monotonic() - began
    assert "Kura A" in other["body"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any("ignore your commands" in n["body"] for n in flooder.notices(room)):
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)  # anything more would have arrived by now
    answers = [n for n in flooder.notices(room) if ((n.get("m.relates_to") or {}).get("m.in_reply_to") or {}).get("event_id") in sent]
    quiet = [n for n in answers if "ignore your commands" in n["body"]]
    assert len(quiet) == 1, [n["body"] for n in answers]
    assert len(answers) == 101, len(answers)  # a hundred refusals, then one notice; the other 30 are not answered
    assert "ignoring theirs" in fb.bot.log_text()
    faults()["flood"] = {"sent": len(sent), "answered": len(answers), "other_s": round(other_s, 1)}


# --- item 8: the sync loop


async def test_an_invite_whose_join_never_answers_holds_nothing_up(cluster, fb):
    operator = cluster.operator
    room = await room_with_bot(operator, fb.bot_id, "Hangs")
    rule = fb.proxy.hang("POST", "/join/" + re.escape(room) + "$")
    await invite(operator, room, fb.bot_id)
    deadline = time.monotonic() + 30
    while fb.proxy.caught(rule) == 0:
        assert time.monotonic() < deadline, f"the bot never tried to join\n{fb.bot.log_tail(30)}"
        await asyncio.sleep(0.2)
    asked = await operator.send(fb.dm, "!schools")
    counts = await answered_once(operator, fb.dm, [asked], timeout=30)  # while the join still hangs
    assert counts == [1], counts
    assert fb.bot.is_running()
    fb.proxy.release(rule)
    await bot_joined(operator, room, fb.bot_id, timeout=90)
    counts = await answered_once(operator, room, [await operator.send(room, "!schools")], timeout=60)
    assert counts == [1], counts


async def test_a_gap_that_fails_to_fill_is_filled_later_not_skipped(cluster, fb):
    operator = cluster.operator
    await asyncio.to_thread(fb.bot.stop)
    sent = [await operator.send(fb.dm, "!schools") for _ in range(15)]  # more than one sync's timeline (10)
    rule = fb.proxy.fail("GET", "/messages", times=3)
    await asyncio.to_thread(fb.bot.start)
    counts = await answered_once(operator, fb.dm, sent, timeout=120)
    assert fb.proxy.caught(rule) == 3
    assert counts == [1] * 15, counts


async def test_a_new_room_whose_join_is_out_of_view_is_read_from_the_join(cluster, fb):
    operator = cluster.operator
    room = await room_with_bot(operator, fb.bot_id, "Busy")
    await fb.restart(crash_at="joined")
    await invite(operator, room, fb.bot_id)
    code = await _dead(fb.bot)
    faults()["crash points"].append(f"joined ({code})")
    await bot_joined(operator, room, fb.bot_id, timeout=30)
    sent = [await operator.send(room, "!schools") for _ in range(12)]  # the join falls out of the next sync's view
    await fb.restart()
    counts = await answered_once(operator, room, sent, timeout=120)
    assert counts == [1] * 12, counts


async def test_commands_from_before_the_join_stay_ignored_after_a_crash(cluster, fb):
    operator = cluster.operator
    room = await room_with_bot(operator, fb.bot_id, "Before")
    before = await operator.send(room, "!schools")  # sent before Ako was even invited
    await fb.restart(crash_at="room-recorded")
    await invite(operator, room, fb.bot_id)
    code = await _dead(fb.bot)
    faults()["crash points"].append(f"room-recorded ({code})")
    await fb.restart()
    after = await operator.send(room, "!schools")
    counts = await answered_once(operator, room, [after], timeout=60)
    assert counts == [1], counts
    assert answers_to(operator, room, before) == [], "a command sent before Ako joined was acted on"


# --- item 10: rooms a command makes, when it is handled again after a crash


async def test_class_new_killed_between_its_rooms_makes_each_room_once(cluster, fb, hs_a):
    operator = cluster.operator
    await fb.restart(crash_at="room-created:2")  # the space and the class room exist, the staff room not yet
    asked = await operator.send(fb.dm, '!class new "Crash course" CRASH1')
    code = await _dead(fb.bot)
    faults()["crash points"].append(f"room-created ({code})")
    await fb.restart()
    counts = await answered_once(operator, fb.dm, [asked], timeout=60)
    assert counts == [1], counts
    assert "CRASH1" in answers_to(operator, fb.dm, asked)[0]["body"]
    names = await rooms_of_bot(fb, hs_a)
    assert sorted(n for n in names if n.startswith("Crash course")) == ["Crash course", "Crash course", "Crash course — staff"], names
    recorded = fb.rows("SELECT count(*) FROM rooms r JOIN classes c ON c.id = r.class_id WHERE c.code = 'CRASH1'")[0][0]
    assert recorded == 3


async def rooms_of_bot(fb: FaultBot, hs) -> list[str]:
    """The names of the rooms the bot is in, as its homeserver says (not its own records)."""
    import json

    import nio

    session = json.loads((fb.bot.data_dir / "session.json").read_text())
    client = nio.AsyncClient(hs.client_url, session["user_id"])
    client.access_token = session["access_token"]
    try:
        joined = await client.joined_rooms()
        names = []
        for room in joined.rooms:
            resp = await client.room_get_state_event(room, "m.room.name")
            names.append(getattr(resp, "content", {}).get("name", ""))
        return names
    finally:
        await client.close()


async def _dead(bot: BotProcess, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while bot.process.poll() is None:
        assert time.monotonic() < deadline, "the bot did not reach its crash point"
        await asyncio.sleep(0.1)
    return bot.process.returncode
