"""Issue 4 end to end: forum topics and reminders on real federating homeservers, the bot as a process.

One class (FRM1) taught by school A's teacher, with Ana on A and Ben on B, is shared by the
module (the ``fr`` fixture). The fixture sets the timed things first, so that their minute of
waiting overlaps the class set-up and the forum test:

- Ana's ``!remindme in 1 minute …``, which arrives while the bot runs, and the teacher's
  ``!remind`` for the class, due a second before it;
- Ben's ``!remindme <a time with seconds, GAP s after Ana's> …``: the bot is killed just after
  Ana's arrives and started again after Ben's was due, so Ben's is sent by the catch-up at
  start, once, marked late;
- A1 "Lab notes", due in 61 minutes: its 1-hour reminder falls due a minute after it is set
  (the config's offsets are 24 h and 1 h), about when the bot has come back; Ana hands it in,
  Ben does not, so only Ben gets a personal reminder.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.matrix_user import MatrixUser, unique_localpart

from .helpers import accept, open_dm

CODE = "FRM1"
NAME = "Forum 1"
GAP = 5.0  # seconds between Ana's and Ben's reminders: room to kill the bot between them
NZ = ZoneInfo("Pacific/Auckland")  # the bot's default zone, in which it reads times


def notice_from(bot_id: str, text: str):
    def match(ev: dict) -> bool:
        c = ev.get("content") or {}
        return ev["type"] == "m.room.message" and ev["sender"] == bot_id and c.get("msgtype") == "m.notice" and text in c.get("body", "")

    return match


def count(user: MatrixUser, room_id: str, bot_id: str, text: str) -> int:
    return sum(1 for ev in user.timeline(room_id) if notice_from(bot_id, text)(ev))


@dataclass
class Forum:
    bot_id: str
    teacher: MatrixUser
    ana: MatrixUser  # learner on A
    ben: MatrixUser  # learner on B
    class_room: str
    ana_work: str
    ben_work: str
    ana_dm: str
    ben_dm: str
    ana_due: float  # time.monotonic() when Ana's reminder falls due
    ben_due: float


@pytest.fixture(scope="module")
async def fr(cluster, hs_a, hs_b):
    bot_id, teacher = cluster.bot_id, cluster.teacher_a
    ana = await MatrixUser.create(hs_a, unique_localpart("ana"))
    ben = await MatrixUser.create(hs_b, unique_localpart("ben"))
    try:
        tdm, adm, bdm = await asyncio.gather(open_dm(teacher, bot_id), open_dm(ana, bot_id), open_dm(ben, bot_id))
        # the reminders first, so that their minute passes while the rest is set up and tested
        set_at = time.monotonic()
        reply = await ana.command(adm, "!remindme in 1 minute stretch your legs")
        ana_due = set_at + 60
        assert "I'll remind you here" in reply["body"] and "(Pacific/Auckland)" in reply["body"], reply["body"]
        ben_at = (datetime.now(NZ) + timedelta(seconds=60 + GAP)).replace(microsecond=0)
        ben_due = time.monotonic() + (ben_at - datetime.now(NZ)).total_seconds()
        reply = await ben.command(bdm, f"!remindme {ben_at:%Y-%m-%d %H:%M:%S} drink some water")
        assert "I'll remind you here" in reply["body"], reply["body"]

        reply = await teacher.command(tdm, f'!class new "{NAME}" {CODE}')
        assert CODE in reply["body"], reply["body"]
        class_room = (await accept(teacher, {NAME, f"{NAME} — staff"}, 3)).one("class")

        async def enrol(learner: MatrixUser, dm: str):
            assert "Welcome" in (await learner.command(dm, f"!join {CODE}"))["body"]
            return await accept(learner, {NAME, f"{NAME} — work of {learner.user_id}"}, 3)

        arooms, brooms = await asyncio.gather(enrol(ana, adm), enrol(ben, bdm))
        assert arooms.one("class") == brooms.one("class") == class_room
        # the teacher is invited to each work room: take those invites, so no later test finds them
        await accept(teacher, {f"{NAME} — work of {ana.user_id}", f"{NAME} — work of {ben.user_id}"}, 2)
        # the teacher's !remind for the class, due a second before Ana's: it arrives while the bot runs
        class_at = (datetime.now(NZ) + timedelta(seconds=ana_due - 1 - time.monotonic())).replace(microsecond=0)
        reply = await teacher.command(class_room, f"!remind {class_at:%Y-%m-%d %H:%M:%S} lab coats on Thursday")
        assert "I'll remind the class in its class room" in reply["body"], reply["body"]
        reply = await teacher.command(class_room, '!assign new "Lab notes" due in 61 minutes')
        assert "Posted **A1 — Lab notes**" in reply["body"], reply["body"]
        assert "Received **A1 — Lab notes**" in (await ana.command(arooms.one("work"), "!submit A1 my notes"))["body"]
        yield Forum(bot_id, teacher, ana, ben, class_room, arooms.one("work"), brooms.one("work"), adm, bdm, ana_due, ben_due)
    finally:
        await ana.close()
        await ben.close()


async def test_a_topic_with_replies_from_a_and_b_shows_two_replies(fr):
    ana, ben, teacher, bot = fr.ana, fr.ben, fr.teacher, fr.bot_id
    mark = ana.mark(fr.class_room)
    await ana.send(fr.class_room, '!topic "Pendulum question"\nWhy does *g* not depend on the mass?')
    root = await ana.wait_for(fr.class_room, notice_from(bot, "**T1 · Pendulum question**"), since=mark)
    assert "<em>g</em>" in root["content"]["formatted_body"]
    root_id = root["event_id"]

    # a learner on B answers in the thread, over federation
    await ben.wait_for(fr.class_room, lambda e: e.get("event_id") == root_id, since=0)
    ben_reply = await ben.send(fr.class_room, "Because it cancels out of F = ma.", thread_root=root_id)
    await ana.wait_for(fr.class_room, lambda e: e.get("event_id") == ben_reply, since=0)
    listing = (await ana.command(fr.class_room, "!topics"))["body"]
    assert "**T1 · Pendulum question** — 1 reply from 1 person" in listing and "**unanswered**" in listing, listing

    # the teacher (on A) answers: two replies from two schools, answered
    await teacher.send(fr.class_room, "Yes, and the pendulum's period shows it.", thread_root=root_id)
    listing = (await ana.command(fr.class_room, "!topics", thread_root=root_id))["body"]  # answered in the thread
    assert "**T1 · Pendulum question** — 2 replies from 2 people" in listing, listing
    assert "unanswered" not in listing

    # pinning it pins its root in the room itself, as every client (on either server) shows it
    reply = await teacher.command(fr.class_room, "!topic pin T1")
    assert "among the room's pinned messages" in reply["body"], reply["body"]
    for user in (ana, ben):
        deadline = time.monotonic() + 30
        while True:
            resp = await user.client.room_get_state_event(fr.class_room, "m.room.pinned_events")
            if getattr(resp, "content", {}).get("pinned") == [root_id]:
                break
            assert time.monotonic() < deadline, f"{user.user_id} never saw T1 pinned: {resp}"
            await asyncio.sleep(0.3)

    # closing it posts in the thread
    mark = ana.mark(fr.class_room)
    reply = await teacher.command(fr.class_room, "!topic close T1")
    assert "Closed **T1 · Pendulum question**" in reply["body"]
    closed = await ana.wait_for(fr.class_room, notice_from(bot, "This topic is closed"), since=mark)
    assert closed["content"]["m.relates_to"]["rel_type"] == "m.thread"
    assert closed["content"]["m.relates_to"]["event_id"] == root_id


async def test_reminders_arrive_once_and_a_killed_bot_sends_the_missed_one_once_marked_late(fr, cluster):
    ana, ben, bot = fr.ana, fr.ben, fr.bot_id
    # Ana's reminder arrives while the bot runs; then the bot dies before Ben's is due
    mine = await ana.wait_for(fr.ana_dm, notice_from(bot, "stretch your legs"), since=0, timeout=75)
    assert "Late" not in mine["content"]["body"]
    theirs = await ben.wait_for(fr.class_room, notice_from(bot, "lab coats on Thursday"), since=0, timeout=15)  # over federation
    assert "Late" not in theirs["content"]["body"] and theirs["content"]["m.mentions"] == {}
    assert time.monotonic() < fr.ben_due - 1, "too slow to kill the bot before Ben's reminder"
    cluster.bot.kill()
    await asyncio.sleep(max(0.0, fr.ben_due + 1 - time.monotonic()))
    await asyncio.to_thread(cluster.bot.start)
    late = await ben.wait_for(fr.ben_dm, notice_from(bot, "drink some water"), since=0, timeout=30)
    assert "_Late: this was due" in late["content"]["body"] and "(Pacific/Auckland)" in late["content"]["body"]

    # A1's 1-hour reminder (its job rebuilt from the database at the restart): the class room gets
    # a notice naming nobody, Ben (no work handed in) a personal one, Ana (handed in) none
    general = await ana.wait_for(fr.class_room, notice_from(bot, "**A1 — Lab notes** is due in"), since=0, timeout=75)
    assert general["content"]["m.mentions"] == {}
    personal = await ben.wait_for(fr.ben_work, notice_from(bot, "You haven't handed in **A1 — Lab notes** yet"), since=0, timeout=30)
    assert personal["content"]["m.mentions"] == {"user_ids": [ben.user_id]}

    await asyncio.sleep(2)  # time for any duplicate to arrive
    assert count(ana, fr.ana_dm, bot, "stretch your legs") == 1
    assert count(ben, fr.class_room, bot, "lab coats on Thursday") == 1
    assert count(ben, fr.ben_dm, bot, "drink some water") == 1
    assert count(ana, fr.class_room, bot, "**A1 — Lab notes** is due in") == 1
    assert count(ben, fr.ben_work, bot, "You haven't handed in") == 1
    assert count(ana, fr.ana_work, bot, "You haven't handed in") == 0
