"""Issue 8 end to end: Ako in end-to-end encrypted rooms, against real federated homeservers.

A second Ako runs here with the product defaults (``encryption`` and ``encrypt_work_rooms`` on,
its own account and data folder on A; the session bot keeps work rooms unencrypted for the plain
test users of other modules). Its operator registers schools A and B; an encryption-capable
teacher on A and learner on B talk to it only in encrypted rooms. The ``e2ee`` fixture sets up
the class (CHEM13) through encrypted DMs, enrols the learner and posts A1, timing each step; the
tests check what it saw and add what they need of their own, so none relies on another.

Measured numbers are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from tests.botproc import BotProcess, write_bot_config
from tests.matrix_user import MatrixUser, unique_localpart

from .helpers import join_invite, open_dm

NAME = "Chemistry 13"
CODE = "CHEM13"
KEY_WAIT = 4  # seconds the bot waits for a missing room key before telling the sender (AKO_KEY_WAIT)
NZ = ZoneInfo("Pacific/Auckland")
ENCRYPTION = {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}


def note(text: str) -> None:
    print(f"\n[e2ee] {text}")


@dataclass
class E2EE:
    bot_id: str
    bot: BotProcess
    teacher: MatrixUser  # on A, staff, encryption-capable
    learner: MatrixUser  # on B, encryption-capable
    teacher_dm: str
    learner_dm: str
    class_room: str = ""
    staff_room: str = ""
    work_room: str = ""
    numbers: dict = field(default_factory=dict)
    replies: dict = field(default_factory=dict)  # what the bot answered while setting up, by step


async def wire_type(user: MatrixUser, room_id: str, event_id: str) -> str:
    """The event's type as the homeserver holds it (before any decryption)."""
    c = user.client
    resp = await c.send(
        "GET",
        f"/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(event_id)}",
        headers={"Authorization": f"Bearer {c.access_token}"},
    )
    return (await resp.json())["type"]


async def is_encrypted(user: MatrixUser, room_id: str) -> bool:
    state = (await user.client.room_get_state(room_id)).events
    return any(e["type"] == "m.room.encryption" for e in state)


def of_class(invite: dict) -> bool:
    """An invite to one of the class's rooms (staff also get invited to the cluster's staffroom)."""
    names = [(e.get("content") or {}).get("name") or "" for e in invite["state"] if e.get("type") == "m.room.name"]
    return any(n.startswith(NAME) for n in names)


async def join_all(user: MatrixUser, count: int) -> list[str]:
    rooms = [await user.wait_invite(of_class, timeout=30) for _ in range(count)]
    for room in rooms:
        await user.join(room)
    return rooms


def undecryptable(user: MatrixUser, room_id: str, since: int = 0) -> list[dict]:
    return [e for e in user.timeline(room_id)[since:] if e.get("type") == "m.room.encrypted"]


def bot_log_count(bot: BotProcess, text: str) -> int:
    return bot.log_text().count(text)


@pytest.fixture(scope="module")
async def e2ee(cluster, hs_a, hs_b, tmp_path_factory):
    base = tmp_path_factory.mktemp("ako-e2ee")
    stores = tmp_path_factory.mktemp("e2ee-stores")
    bot_id, _ = hs_a.register("akocrypt", "akocrypt-password")
    # encryption / encrypt_work_rooms left out: the config's defaults (both on) apply.
    cfg = write_bot_config(
        base / "config.toml", hs_a, bot_id, "akocrypt-password", [cluster.operator.user_id], base / "data",
        bot={"encryption": None, "encrypt_work_rooms": None},
    )
    proc = BotProcess(cfg, base / "data", env={"AKO_KEY_WAIT": str(KEY_WAIT)}).start()
    teacher = await MatrixUser.create(hs_a, unique_localpart("chemteacher"), encrypted=True, store_dir=stores / "teacher")
    learner = await MatrixUser.create(hs_b, unique_localpart("mere"), encrypted=True, store_dir=stores / "learner")
    try:
        operator = cluster.operator
        odm = await open_dm(operator, bot_id)
        for line in (
            f'!school add {hs_a.server_name} "Kura A"',
            f'!school add {hs_b.server_name} "Kura B"',
            f"!school admin {hs_a.server_name} {cluster.admin_a.user_id}",
        ):
            await operator.command(odm, line)
        adm = await open_dm(cluster.admin_a, bot_id)
        assert "is now staff" in (await cluster.admin_a.command(adm, f"!staff add {teacher.user_id}"))["body"]
        teacher_dm, learner_dm = await asyncio.gather(
            open_dm(teacher, bot_id, encrypted=True), open_dm(learner, bot_id, encrypted=True)
        )
        e = E2EE(bot_id, proc, teacher, learner, teacher_dm, learner_dm)
        await set_up_class(e)
        yield e
    finally:
        await teacher.close()
        await learner.close()
        proc.stop()


async def set_up_class(e2ee: E2EE) -> None:
    """Through encrypted DMs: the class, the learner joining it, the teacher in the learner's
    (encrypted) work room, and A1. The first encrypted messages set up Olm sessions and room keys
    on the way; each step is timed."""
    t, learner = e2ee.teacher, e2ee.learner
    for who, user, dm in (("teacher on A", t, e2ee.teacher_dm), ("learner on B, over federation", learner, e2ee.learner_dm)):
        start = time.monotonic()
        e2ee.replies[f"help {who}"] = await user.command(dm, "!help")
        e2ee.numbers[f"first encrypted !help answered and decrypted, {who} (s)"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    reply = e2ee.replies["class new"] = await t.command(e2ee.teacher_dm, f'!class new "{NAME}" {CODE}')
    e2ee.numbers["!class new (creates the rooms) answered (s)"] = round(time.monotonic() - start, 2)
    assert CODE in reply["body"], reply["body"]
    for room in await join_all(t, 3):  # space, class room, staff room
        state = (await t.client.room_get_state(room)).events
        if any(e["type"] == "nz.ako.class" for e in state):
            e2ee.class_room = room
        if any(e["type"] == "m.room.name" and e["content"].get("name", "").endswith("— staff") for e in state):
            e2ee.staff_room = room

    # A learner on B, in an encrypted DM (as Element makes them), joins by code.
    start = time.monotonic()
    reply = e2ee.replies["join"] = await learner.command(e2ee.learner_dm, f"!join {CODE}")
    e2ee.numbers["!join (creates the work room) answered (s)"] = round(time.monotonic() - start, 2)
    assert f"Welcome to **{NAME}**" in reply["body"], reply["body"]
    rooms = await join_all(learner, 3)
    assert e2ee.class_room in rooms
    for room in rooms:
        state = (await learner.client.room_get_state(room)).events
        if any(e["type"] == "m.room.history_visibility" and e["content"]["history_visibility"] == "joined" for e in state):
            e2ee.work_room = room
    assert e2ee.work_room
    await join_invite(t, e2ee.work_room)  # the teacher is invited to each learner's work room

    day = (datetime.now(NZ) + timedelta(days=10)).date()
    reply = await t.command(e2ee.class_room, f'!assign new "Lab safety" due {day.isoformat()} 17:00 points 5\nRead the safety sheet.')
    assert "Posted **A1" in reply["body"], reply["body"]
    e2ee.replies["undecryptable while setting up"] = bot_log_count(e2ee.bot, "Could not decrypt")
    e2ee.replies["undecryptable in the learner's DM"] = len(undecryptable(learner, e2ee.learner_dm))


async def test_encrypted_dm_join_and_an_encrypted_work_room(e2ee):
    t, learner = e2ee.teacher, e2ee.learner
    for dm, who in ((e2ee.teacher_dm, "teacher on A"), (e2ee.learner_dm, "learner on B, over federation")):
        reply = e2ee.replies[f"help {who}"]
        assert "!join" in reply["body"], reply["body"]
    assert await wire_type(t, e2ee.teacher_dm, e2ee.replies["class new"]["event_id"]) == "m.room.encrypted"
    assert await is_encrypted(t, e2ee.staff_room), "encrypt_work_rooms: the staff room is encrypted"
    assert await wire_type(learner, e2ee.learner_dm, e2ee.replies["join"]["event_id"]) == "m.room.encrypted"
    assert await is_encrypted(learner, e2ee.work_room)
    roster = await t.command(e2ee.class_room, "!roster")
    assert learner.user_id in roster["body"]

    # In the encrypted work room, the bot reads the learner and the learner reads the bot.
    assert e2ee.replies["undecryptable while setting up"] == e2ee.replies["undecryptable in the learner's DM"] == 0
    failures_before = bot_log_count(e2ee.bot, "Could not decrypt")
    reply = await learner.command(e2ee.work_room, "!help")
    assert "!submit" in reply["body"], reply["body"]
    assert await wire_type(learner, e2ee.work_room, reply["event_id"]) == "m.room.encrypted"
    assert undecryptable(learner, e2ee.work_room) == []
    assert bot_log_count(e2ee.bot, "Could not decrypt") == failures_before
    note(f"numbers so far: {e2ee.numbers}")


async def test_submission_receipt_and_grade_in_an_encrypted_work_room(e2ee):
    t, learner = e2ee.teacher, e2ee.learner
    day = (datetime.now(NZ) + timedelta(days=10)).date()
    reply = await t.command(e2ee.class_room, f'!assign new "Titration" due {day.isoformat()} 17:00 points 10\nReport your three titres.')
    found = re.match(r"Posted \*\*(A\d+) — Titration\*\*", reply["body"])
    assert found, reply["body"]
    aid = found.group(1)

    receipt = await learner.command(e2ee.work_room, f"!submit {aid} Titres: 24.10, 24.05, 24.10 mL.")
    assert f"Received **{aid}" in receipt["body"] and "version 1" in receipt["body"], receipt["body"]
    assert await wire_type(learner, e2ee.work_room, receipt["event_id"]) == "m.room.encrypted"

    mark = learner.mark(e2ee.work_room)
    await t.command(e2ee.work_room, f"!grade {aid} 9/10 Careful work; quote the mean titre.")
    grade = await learner.wait_for(
        e2ee.work_room,
        lambda e: e["type"] == "m.room.message" and e["sender"] == e2ee.bot_id and "your grade is" in e["content"]["body"],
        since=mark,
        timeout=30,
    )
    assert "**9/10**" in grade["content"]["body"] and "quote the mean titre" in grade["content"]["body"]
    assert await wire_type(learner, e2ee.work_room, grade["event_id"]) == "m.room.encrypted"
    assert undecryptable(learner, e2ee.work_room) == undecryptable(t, e2ee.work_room) == []


async def test_a_message_without_its_key_gets_no_action_and_one_notice(e2ee):
    learner, bot_id, dm = e2ee.learner, e2ee.bot_id, e2ee.learner_dm
    c = learner.client
    bot_devices = list(c.device_store.active_user_devices(bot_id))
    assert bot_devices, "the learner's client knows the bot's device"
    for device in bot_devices:  # what a client that excludes unverified devices does
        c.blacklist_device(device)
    try:
        mark = learner.mark(dm)
        start = time.monotonic()
        first = await learner.send(dm, "!mywork")
        notice = await learner.wait_for(
            dm, lambda e: e["sender"] == bot_id and e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == first,
            since=mark, timeout=KEY_WAIT + 20,
        )
        e2ee.numbers["notice after an undecryptable message (s)"] = round(time.monotonic() - start, 2)
        assert "could not read your message" in notice["content"]["body"], notice["content"]["body"]
        assert bot_devices[0].id in notice["content"]["body"]
        assert learner.user_id in notice["content"]["m.mentions"]["user_ids"]
        # Once per sender and room: a second unreadable message gets nothing.
        second = await learner.send(dm, "!classes")
        await asyncio.sleep(KEY_WAIT + 3)
        from_bot = [e for e in learner.timeline(dm)[mark:] if e["sender"] == bot_id and e["type"] == "m.room.message"]
        assert [e["event_id"] for e in from_bot] == [notice["event_id"]], "no action on either message, one notice"
        log = e2ee.bot.log_text()
        assert f"Could not decrypt {first} from {learner.user_id} in {dm} (session " in log
        assert f"Could not decrypt {second} from {learner.user_id} in {dm}" in log and "(the sender was told before)" in log
    finally:
        for device in bot_devices:
            c.unblacklist_device(device)
    reply = await learner.command(dm, "!classes")
    assert NAME in reply["body"], reply["body"]


async def test_five_restarts_and_no_undecryptable_message(e2ee):
    learner, t, bot = e2ee.learner, e2ee.teacher, e2ee.bot
    marks = {room: learner.mark(room) for room in (e2ee.learner_dm, e2ee.work_room)}
    tmarks = {room: t.mark(room) for room in (e2ee.staff_room, e2ee.work_room)}
    failures_before = bot_log_count(bot, "Could not decrypt")
    waits_before = bot_log_count(bot, "Waiting for the room key")
    device_lines = set()
    times = []
    for i in range(5):
        if i % 2:
            bot.kill()  # a crash, as far as the bot can tell
        else:
            bot.stop()
        start = time.monotonic()
        bot.start()
        ready = time.monotonic() - start
        start = time.monotonic()
        reply = await learner.command(e2ee.learner_dm, "!classes", timeout=60)
        assert NAME in reply["body"], reply["body"]
        reply = await learner.command(e2ee.work_room, "!mywork", timeout=60)
        assert "A1" in reply["body"], reply["body"]
        reply = await t.command(e2ee.staff_room, "!submissions A1", timeout=60)
        assert learner.user_id in reply["body"], reply["body"]
        times.append((round(ready, 2), round(time.monotonic() - start, 2)))
    for line in bot.log_text().splitlines():
        if "Resumed session of" in line:
            device_lines.add(line.rsplit(" ", 1)[-1])
    assert len(device_lines) == 1, f"one device across restarts, not {device_lines}"
    for room, mark in marks.items():
        assert undecryptable(learner, room, mark) == [], room
    for room, mark in tmarks.items():
        assert undecryptable(t, room, mark) == [], room
    assert bot_log_count(bot, "Could not decrypt") == failures_before
    e2ee.numbers["restarts (stop/kill alternately)"] = 5
    e2ee.numbers["per restart: (ready s, three encrypted round trips s)"] = times
    e2ee.numbers["bot waited for a late room key"] = bot_log_count(bot, "Waiting for the room key") - waits_before
    note(f"numbers: {e2ee.numbers}")


async def test_no_room_keys_for_a_user_on_an_unregistered_server(e2ee, hs_c):
    t, bot_id = e2ee.teacher, e2ee.bot_id
    carl = await MatrixUser.create(hs_c, unique_localpart("carl"), encrypted=True)
    try:
        resp = await t.client.room_create(name="Mixed, encrypted", invite=[bot_id, carl.user_id], initial_state=[ENCRYPTION])
        room = resp.room_id
        await carl.wait_invite(lambda i: i["room_id"] == room, timeout=30)
        await carl.join(room)
        await t.wait_for(room, lambda e: e["type"] == "m.room.member" and e["state_key"] == bot_id
                         and e["content"]["membership"] == "join", since=0, timeout=30)
        await t.wait_for(room, lambda e: e["type"] == "m.room.member" and e["state_key"] == carl.user_id
                         and e["content"]["membership"] == "join", since=0, timeout=30)
        # Carl's message reaches the bot (his client shares his key); the answer is not for him.
        mark = carl.mark(room)
        sent = await carl.send(room, "!help")
        answer = await t.wait_for(
            room,
            lambda e: e["sender"] == bot_id and e["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == sent,
            timeout=30,
        )
        assert answer["type"] == "m.room.message" and "Commands you can use here" in answer["content"]["body"]  # the teacher reads it
        assert "!join" not in answer["content"]["body"]  # help lists only what Carl may run: no joining from C
        reply = await t.command(room, "!schools")
        assert "Kura A" in reply["body"]
        for event_id in (answer["event_id"], reply["event_id"]):
            seen = await carl.wait_for(room, lambda e, eid=event_id: e["event_id"] == eid, since=mark, timeout=30)
            assert seen["type"] == "m.room.encrypted", "Carl's client could decrypt the bot's message"
        await asyncio.sleep(2)  # no key turns up later either
        content = seen["content"]
        assert carl.client.olm.inbound_group_store.get(room, content["sender_key"], content["session_id"]) is None
        assert f"Blacklisted device {carl.client.device_id} of {carl.user_id}" in e2ee.bot.log_text()
    finally:
        await carl.close()
