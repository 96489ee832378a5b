"""Small steps every end-to-end test takes: opening a DM with the bot, taking up invitations,
enrolling by class code, a class with two learners, and reading the bot's database."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

from tests.matrix_user import MatrixUser, unique_localpart


async def open_dm(user: MatrixUser, bot_id: str, *, encrypted: bool = False) -> str:
    """A direct message with the bot (end-to-end encrypted if asked), once the bot has joined it."""
    room = await user.dm(bot_id, encrypted=encrypted)
    await user.wait_for(
        room,
        lambda e: e["type"] == "m.room.member" and e["state_key"] == bot_id and e["content"]["membership"] == "join",
        timeout=30,
        since=0,
    )
    return room


async def join_invite(user: MatrixUser, room_id: str) -> None:
    await user.wait_invite(lambda i: i["room_id"] == room_id, timeout=30)
    await user.join(room_id)


def reply_target(content: dict) -> str | None:
    """The event a message (its content) answers, if it is a reply."""
    return (content.get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id")


def room_name(invite: dict) -> str | None:
    """The name in an invitation's stripped state (None if the room has none)."""
    for ev in invite["state"]:
        if ev.get("type") == "m.room.name":
            return (ev.get("content") or {}).get("name")
    return None


class Rooms(dict):
    """Rooms just joined: room id → kind ("space", "class", "staff", "work" or "other")."""

    def one(self, kind: str | None = None) -> str:
        """The only room of that kind (or the only room, if no kind is given)."""
        found = [r for r, k in self.items() if kind is None or k == kind]
        assert len(found) == 1, (kind, dict(self))
        return found[0]


async def room_kind(user: MatrixUser, room_id: str) -> str:
    """What a room the user is in is, from its state as the user's server holds it."""
    state = (await user.client.room_get_state(room_id)).events
    name = next((e["content"].get("name") or "" for e in state if e["type"] == "m.room.name"), "")
    if any(e["type"] == "nz.ako.class" for e in state):
        return "class"
    if any(e["type"] == "m.room.create" and e["content"].get("type") == "m.space" for e in state):
        return "space"
    if "— work of" in name:
        return "work"
    if name.endswith("— staff"):
        return "staff"
    return "other"


async def accept(user: MatrixUser, names: str | set[str], count: int = 1) -> Rooms:
    """Join ``count`` pending invitations to rooms named in ``names`` (other invitations stay
    pending); returns what was joined, by kind."""
    names = {names} if isinstance(names, str) else set(names)
    rooms = [await user.wait_invite(lambda i: room_name(i) in names, timeout=30) for _ in range(count)]
    await asyncio.gather(*(user.join(r) for r in rooms))
    return Rooms(zip(rooms, await asyncio.gather(*(room_kind(user, r) for r in rooms))))


async def enrol(user: MatrixUser, bot_id: str, code: str, dm: str | None = None) -> str:
    """Join a class by code from a DM with the bot (``dm``, or a new one), take up its three
    invitations; return the work room's id."""
    dm = dm or await open_dm(user, bot_id)
    reply = await user.command(dm, f"!join {code}")
    assert "Welcome" in reply["body"], reply["body"]
    rooms = Rooms()
    for _ in range(3):
        room = await user.wait_invite(timeout=30)
        await user.join(room)
        rooms[room] = await room_kind(user, room)
    return rooms.one("work")


@dataclass
class ClassWithLearners:
    """A class taught by school A's teacher with two learners, Ana on school A and Ben on B."""

    name: str
    code: str
    teacher: MatrixUser
    ana: MatrixUser
    ben: MatrixUser
    teacher_dm: str
    ana_dm: str
    ben_dm: str
    class_room: str
    staff_room: str
    ana_work: str
    ben_work: str


@asynccontextmanager
async def class_with_ana_and_ben(cluster, hs_a, hs_b, name: str, code: str):
    """School A's teacher makes the class ``name`` (``code``) in her DM with the bot; Ana (new, on A)
    and Ben (new, on B) join it by code in theirs. Everyone joins the rooms that are theirs: the
    teacher the class and staff rooms and each learner's work room, the learners the class room and
    their own work room. Ana and Ben are closed after."""
    teacher, bot_id = cluster.teacher_a, cluster.bot_id
    async with (
        await MatrixUser.create(hs_a, unique_localpart("ana")) as ana,
        await MatrixUser.create(hs_b, unique_localpart("ben")) as ben,
    ):
        tdm, adm, bdm = await asyncio.gather(open_dm(teacher, bot_id), open_dm(ana, bot_id), open_dm(ben, bot_id))
        reply = await teacher.command(tdm, f'!class new "{name}" {code}')
        assert f"class code **{code}**" in reply["body"], reply["body"]
        trooms = await accept(teacher, {name, f"{name} — staff"}, 3)

        async def joins(learner: MatrixUser, dm: str) -> Rooms:
            reply = await learner.command(dm, f"!join {code}")
            assert f"Welcome to **{name}**" in reply["body"], reply["body"]
            return await accept(learner, {name, f"{name} — work of {learner.user_id}"}, 3)

        arooms, brooms = await asyncio.gather(joins(ana, adm), joins(ben, bdm))
        assert arooms.one("class") == brooms.one("class") == trooms.one("class")
        # the teacher is invited to each learner's work room as it is made
        works = {f"{name} — work of {learner.user_id}" for learner in (ana, ben)}
        assert set(await accept(teacher, works, 2)) == {arooms.one("work"), brooms.one("work")}
        yield ClassWithLearners(
            name, code, teacher, ana, ben, tdm, adm, bdm,
            trooms.one("class"), trooms.one("staff"), arooms.one("work"), brooms.one("work"),
        )


def db_rows(owner, sql: str, params=()) -> list[tuple]:
    """Read the bot's database (read-only) while it runs; ``owner`` has a ``.bot`` (a cluster, say)."""
    con = sqlite3.connect(f"file:{owner.bot.data_dir / 'ako.db'}?mode=ro", uri=True, timeout=10)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


async def wait_dead(bot, timeout: float = 30) -> int:
    """Wait for a bot process told to crash (``crash_at``) to die; returns its exit code."""
    deadline = time.monotonic() + timeout
    while bot.process.poll() is None:
        assert time.monotonic() < deadline, "the bot did not reach its crash point"
        await asyncio.sleep(0.1)
    return bot.process.returncode
