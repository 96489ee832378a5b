"""Running a class, end to end: `!class code [reset|off]`, `!class info`, `!return` (SPEC §3).

The module makes everything it uses: a teacher of its own on school A (named staff by A's school
admin), a class with a random code, learners on school B, an assignment and a submission.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass

import pytest

from tests.matrix_user import MatrixUser, unique_localpart

from .helpers import open_dm

NAME = "Class admin"


async def joined_rooms(user: MatrixUser, count: int) -> dict[str, str]:
    """Join the next ``count`` invites: {room name, or "space": room id}."""
    rooms = [await user.wait_invite(timeout=60) for _ in range(count)]
    await asyncio.gather(*(user.join(r) for r in rooms))
    out = {}
    for r in rooms:
        state = (await user.client.room_get_state(r)).events
        name = next((e["content"].get("name") for e in state if e["type"] == "m.room.name"), r)
        space = any(e["type"] == "m.room.create" and e["content"].get("type") == "m.space" for e in state)
        out["space" if space else name] = r
    return out


@dataclass
class Klass:
    bot_id: str
    code: str
    teacher: MatrixUser
    ben: MatrixUser  # learner on B
    dms: dict[str, str]
    class_room: str
    staff_room: str
    ben_work: str


async def make_class(cluster, hs_a, hs_b) -> Klass:
    """A teacher of its own, a class with a random code, Ben on B in it with his work room, and A1."""
    bot_id = cluster.bot_id
    teacher, ben = await asyncio.gather(
        MatrixUser.create(hs_a, unique_localpart("adminteacher")),
        MatrixUser.create(hs_b, unique_localpart("ben")),
    )
    admin_dm = await open_dm(cluster.admin_a, bot_id)
    reply = await cluster.admin_a.command(admin_dm, f"!staff add {teacher.user_id}")
    assert "is now staff" in reply["body"], reply["body"]
    dm_t, dm_b = await asyncio.gather(open_dm(teacher, bot_id), open_dm(ben, bot_id))
    code = "ADM" + secrets.token_hex(2).upper()
    reply = await teacher.command(dm_t, f'!class new "{NAME}" {code}')
    assert f"class code **{code}**" in reply["body"], reply["body"]
    rooms = {}
    while NAME not in rooms or f"{NAME} — staff" not in rooms:  # the staffroom may invite too
        rooms.update(await joined_rooms(teacher, 1))
    reply = await ben.command(dm_b, f"!join {code}")
    assert "Welcome" in reply["body"], reply["body"]
    mine: dict[str, str] = {}
    while NAME not in mine or f"{NAME} — work of {ben.user_id}" not in mine:  # and the class's space
        mine.update(await joined_rooms(ben, 1))
    work = mine[f"{NAME} — work of {ben.user_id}"]
    await teacher.join(await teacher.wait_invite(lambda i: i["room_id"] == work, timeout=60))
    reply = await teacher.command(rooms[NAME], '!assign new "Essay" due in 14 days points 20\nWrite about a river.')
    assert "Posted **A1" in reply["body"], reply["body"]
    return Klass(bot_id, code, teacher, ben, {teacher.user_id: dm_t, ben.user_id: dm_b}, rooms[NAME], rooms[f"{NAME} — staff"], work)


@pytest.fixture(scope="module")
async def klass(cluster, hs_a, hs_b):
    """Shared by the tests that change neither the code nor the roster."""
    k = await make_class(cluster, hs_a, hs_b)
    yield k
    await asyncio.gather(k.teacher.close(), k.ben.close())


@pytest.fixture
async def own_class(cluster, hs_a, hs_b):
    """A class of the test's own: for a test that changes its code and roster."""
    k = await make_class(cluster, hs_a, hs_b)
    yield k
    await asyncio.gather(k.teacher.close(), k.ben.close())


def info_lines(body: str) -> dict[str, str]:
    return dict(re.findall(r"^- ([^:]+): (.*)$", body, re.M))


async def test_class_info_for_teacher_and_learner_and_refused_to_others(klass, new_user, hs_b):
    k = klass
    body = (await k.teacher.command(k.class_room, "!class info"))["body"]
    assert body.startswith(f"{NAME}\n") or body.startswith(f"**{NAME}**"), body
    assert info_lines(body) == {
        "Code": k.code, "Time zone": "Pacific/Auckland", "Teachers": k.teacher.user_id, "Learners": "1",
    }, body
    # a learner asks in their work room: the same card
    assert (await k.ben.command(k.ben_work, "!class info"))["body"] == body
    # someone of no class, naming the code in their DM: refused, politely
    stranger = await new_user(hs_b, "nosy")
    dm = await open_dm(stranger, k.bot_id)
    reply = await stranger.command(dm, f"!class info {k.code}")
    assert reply["body"] == f"Only a member of {NAME} can use !class info.", reply["body"]


async def test_class_code_shows_resets_and_switches_off(own_class, new_user, hs_a, hs_b):
    k = own_class
    dm_t = k.dms[k.teacher.user_id]
    reply = await k.teacher.command(k.staff_room, "!class code")
    assert reply["body"] == f"The class code of {NAME} is **{k.code}**.", reply["body"]
    # a learner may not see or change it
    reply = await k.ben.command(k.ben_work, "!class code reset")
    assert reply["body"] == f"Only a teacher of {NAME} can use !class code.", reply["body"]

    # reset: a new code; the old one joins nobody, the new one does
    reply = await k.teacher.command(k.class_room, "!class code reset")
    m = re.fullmatch(rf"The new class code of {NAME} is \*\*(\w+)\*\*; the old one no longer works\.", reply["body"])
    assert m and m.group(1) != k.code, reply["body"]
    new_code = m.group(1)
    cleo = await new_user(hs_a, "cleo")
    dm_c = await open_dm(cleo, k.bot_id)
    reply = await cleo.command(dm_c, f"!join {k.code}")
    assert reply["body"] == f"No class takes the code {k.code}. Check it with your teacher.", reply["body"]
    reply = await cleo.command(dm_c, f"!join {new_code}")
    assert f"Welcome to **{NAME}**" in reply["body"], reply["body"]
    assert info_lines((await k.teacher.command(dm_t, f"!class info {new_code}"))["body"])["Learners"] == "2"

    # off: nobody joins by code; the class is still named by it in a DM; reset turns joining on again
    reply = await k.teacher.command(dm_t, f"!class code {new_code} off")
    assert reply["body"].startswith(f"Joining {NAME} by code is off."), reply["body"]
    dave = await new_user(hs_b, "dave")
    dm_d = await open_dm(dave, k.bot_id)
    reply = await dave.command(dm_d, f"!join {new_code}")
    assert reply["body"] == f"No class takes the code {new_code}. Check it with your teacher.", reply["body"]
    card = info_lines((await k.teacher.command(k.class_room, "!class info"))["body"])
    assert card["Code"] == f"{new_code} (joining by code is off)" and card["Learners"] == "2", card
    reply = await k.teacher.command(k.class_room, "!class code")
    assert reply["body"] == f"The class code of {NAME} is **{new_code}** (joining by code is off).", reply["body"]
    reply = await k.teacher.command(k.class_room, "!class code reset")
    third = re.search(r"\*\*(\w+)\*\*", reply["body"]).group(1)
    reply = await dave.command(dm_d, f"!join {third}")
    assert f"Welcome to **{NAME}**" in reply["body"], reply["body"]
    # bad input: a word that is not reset or off
    reply = await k.teacher.command(k.class_room, "!class code delete")
    assert "reset|off" in reply["body"] and "Usage: `!class code [reset|off]`" in reply["body"], reply["body"]


async def test_return_hands_work_back_in_the_work_room_only(klass):
    k = klass
    receipt = await k.ben.command(k.ben_work, "!submit A1 Rivers carry water.")
    assert "version 1" in receipt["body"], receipt["body"]

    # in the work room: the learner sees the note there
    class_mark = k.ben.mark(k.class_room)
    reply = await k.teacher.command(k.ben_work, "!return A1 Add your method, please.")
    assert reply["body"].startswith(f"{k.teacher.user_id} has handed **A1 — Essay** back to you for more work."), reply["body"]
    assert "Add your method, please." in reply["body"] and "`!submit A1`" in reply["body"], reply["body"]
    # it reached Ben, in his work room, mentioning him
    seen = await k.ben.wait_for(k.ben_work, lambda e: e["event_id"] == reply["event_id"], since=0, timeout=30)
    assert k.ben.user_id in (seen["content"].get("m.mentions") or {}).get("user_ids", []), seen["content"]

    # named from the staff room: the teacher is told it went to the work room only
    work_mark = k.ben.mark(k.ben_work)
    done = await k.teacher.command(k.staff_room, f"!return A1 {k.ben.user_id} Check the units.")
    assert done["body"] == f"Handed A1 back to {k.ben.user_id}; I told them in their work room only.", done["body"]
    note = await k.ben.wait_for(
        k.ben_work, lambda e: "Check the units." in (e.get("content") or {}).get("body", ""), since=work_mark, timeout=30
    )
    assert note["sender"] == k.bot_id and note["content"]["msgtype"] == "m.notice"

    # a new version is taken; nothing of this reached the class room
    receipt = await k.ben.command(k.ben_work, "!submit A1 Rivers carry water, measured in m³/s.")
    assert "version 2" in receipt["body"], receipt["body"]
    await asyncio.sleep(1)
    leaked = [e for e in k.ben.timeline(k.class_room)[class_mark:] if "Check the units" in str(e) or "method" in str(e)]
    assert leaked == []

    # a learner cannot return work; bad input names the problem
    reply = await k.ben.command(k.ben_work, "!return A1")
    assert reply["body"] == f"Only a teacher of {NAME} can use !return.", reply["body"]
    reply = await k.teacher.command(k.ben_work, "!return A9")
    assert "A9" in reply["body"] and "Traceback" not in reply["body"], reply["body"]
