"""Every command × every role × every room kind, generated from the declarations (SPEC §1).

A new command is covered automatically: its arguments are made up from its parameter types,
and the expected answer follows from its declared `who`/`where`, plus the few rules SPEC §1
states that a declaration cannot (listed in SPECIAL with their reason). Each cell runs on a
fresh copy of one prepared database, through the same dispatcher the bot uses.
"""

from __future__ import annotations

import shutil

import pytest

import commands
from commands.context import Role, Where
from commands.dispatch import CommandEvent, Outcome
from commands.registry import Command
from storage.db import Database

from .conftest import NOW
from .fakes import OPERATOR, FakeRooms, FrozenClock, Harness

A, B, C = "a.test", "b.test", "c.test"
ADMIN_A = "@admin:a.test"
STAFF_OTHER = "@staffer:a.test"  # staff, not in the class
TEACHER = "@teacher:a.test"
LEARNER = "@ana:b.test"
OTHER_LEARNER = "@otto:b.test"  # a learner of another class
STRANGER = "@cat:c.test"  # a server of no registered school

ROLES = {
    "operator": OPERATOR,
    "school admin": ADMIN_A,
    "staff not in the class": STAFF_OTHER,
    "class teacher": TEACHER,
    "learner": LEARNER,
    "learner of another class": OTHER_LEARNER,
    "unregistered server": STRANGER,
}
ROOM_KINDS = ("class", "work", "dm")

SAMPLES = {
    "AssignmentId": "A1",
    "ClassCode": "OTHER1",
    "UserId": LEARNER,
    "When": "friday 5pm",
    "PersonalWhen": "friday 5pm",
    "Text": "Title",
    "Markdown": "Some words",
    "Number": "10",
    "TimeZone": "Europe/London",
    "ZoneOrReset": "Europe/London",
    "ServerName": "b.test",
    "GradeWords": f"{LEARNER} 5/20 fine",
    "ReturnWords": f"{LEARNER} please redo",
    "ReminderId": "R1",
    "Days": "monday",
    "TimeOfDay": "9:00",
    "TopicId": "T1",
    "ProgrammeId": "P1",
    "ItemId": "I1",
    "DueOffset": "week 2 fri 17:00",
    "StartDate": "monday",
}


# Where the generic sample is not a plausible target for the command.
SAMPLE_USER = {
    "class teacher add": STAFF_OTHER, "staff add": "@newstaff:a.test", "staff remove": STAFF_OTHER,
    "programme author add": STAFF_OTHER,
}


def sample_args(cmd: Command) -> tuple[str, str]:
    """A line of plausible arguments and a body, from the parameter declarations."""
    words, body = [], ""
    for p in cmd.params:
        # an optional id that a room can stand for (P1 in its programme's room, A1 in a marking
        # session) is given: these cells are about the command on a named record
        if p.optional and not p.body and type(p.type).__name__ not in ("ProgrammeId", "AssignmentId"):
            continue
        kind = type(p.type).__name__
        value = SAMPLE_USER.get(cmd.name) if kind == "UserId" and cmd.name in SAMPLE_USER else SAMPLES.get(kind)
        if kind == "Choice":
            value = p.type.choices[0]
        if value is None:
            raise AssertionError(f"no sample for {kind} in {cmd.name}: add one to SAMPLES")
        if p.body:
            body = value
        elif p.keyword:
            words += [p.keyword, value]
        else:
            words.append(f'"{value}"' if kind == "Text" and not p.rest else value)
    return " ".join(words), body


def declared_allow(cmd: Command, role: str, room: str) -> bool:
    where_ok = {
        Where.ANYWHERE: True,
        Where.CLASS: True,
        Where.CLASS_ROOM: room == "class",
        Where.WORK_ROOM: room == "work",
        Where.DM: room == "dm",
    }[cmd.where]
    if not where_ok:
        return False
    if role == "operator":
        return True
    flags = {
        Role.ANYONE: True,
        Role.OPERATOR: False,
        Role.SCHOOL_ADMIN: role == "school admin",
        Role.STAFF: role in ("staff not in the class", "class teacher"),
        Role.TEACHER: role == "class teacher",
        Role.MEMBER: role in ("class teacher", "learner"),
        Role.LEARNER: role == "learner",
    }
    return flags[cmd.who]


# Rules of SPEC §1 that a handler checks beyond its declaration: (command, role) -> allowed.
SPECIAL = {
    # Learners come only from registered schools' servers (allow_guests is off).
    ("join", "unregistered server"): False,
    # A class's teacher cannot also be its learner.
    ("join", "class teacher"): False,
    # Grade exports: teachers of the class, and school admins for their own school's learners.
    **{("export grades", r): r in ("operator", "class teacher", "school admin") for r in ROLES},
    # !forget: a school admin forgets their own school's learners only (the sample learner is on B).
    ("forget", "school admin"): False,
    # Programme P1 is authored by the class teacher alone: other staff may read it, not change it.
    **{
        (name, "staff not in the class"): False
        for name in (
            "programme add", "programme resource", "programme import", "programme move", "programme remove",
            "programme author add", "programme publish", "programme unpublish",
            "programme use",  # and only a teacher of the class (OTHER1) may put it into that class
        )
    },
}


def expected_allow(cmd: Command, role: str, room: str) -> bool:
    if cmd.name == "submit" and (room == "dm" or (room == "work" and role != "learner")):
        return False  # work is handed in in one's own work room (or moved there from the class room)
    if (cmd.name, role) in SPECIAL and declared_allow(cmd, "operator", room):
        return SPECIAL[(cmd.name, role)]
    return declared_allow(cmd, role, room)


@pytest.fixture(scope="module")
async def prepared(tmp_path_factory):
    """One prepared database: two schools, staff, a class with a learner, an assignment."""
    path = tmp_path_factory.mktemp("matrix") / "template.db"
    db = await Database.open(path)
    h = Harness(db, FrozenClock(NOW), FakeRooms())
    dm = "!dm:a.test"
    await h.repos.rooms.add(dm, "dm", None, OPERATOR, NOW)
    for line in ('!school add a.test "Kura A"', '!school add b.test "Kura B"', f"!school admin a.test {ADMIN_A}"):
        assert "Only" not in await h.say(OPERATOR, dm, line)
    await h.say(ADMIN_A, dm, f"!staff add {TEACHER} {STAFF_OTHER}")
    await h.say(TEACHER, dm, '!class new "Physics 12" PHYS12')
    await h.say(TEACHER, dm, '!class new "Other" OTHER1')
    await h.say(LEARNER, dm, "!join PHYS12")
    await h.say(OTHER_LEARNER, dm, "!join OTHER1")
    assert "A1" in await h.say(TEACHER, dm, '!assign new PHYS12 "Essay" due friday 5pm points 20')
    assert "Created **P1" in await h.say(TEACHER, dm, '!programme new "Forces"')
    klass = await h.repos.classes.by_code("PHYS12")
    rooms = {
        "class": (await h.repos.rooms.of_class(klass.id, "class")).room_id,
        "work": (await h.repos.rooms.work_room(klass.id, LEARNER)).room_id,
    }
    await db.close()
    return path, rooms


CELLS = [(cmd.name, role, room) for cmd in commands.load().all() for role in ROLES for room in ROOM_KINDS]
RESULTS: dict[tuple, tuple[bool, Outcome, str]] = {}


@pytest.mark.parametrize("name, role, room", CELLS, ids=[f"{n}|{r}|{k}" for n, r, k in CELLS])
async def test_cell(prepared, tmp_path, name, role, room):
    path, rooms = prepared
    copy = tmp_path / "cell.db"
    shutil.copy(path, copy)
    db = await Database.open(copy)
    try:
        h = Harness(db, FrozenClock(NOW), FakeRooms())
        cmd = commands.load().find(name)
        sender = ROLES[role]
        room_id = rooms.get(room) or f"!dm-{role.replace(' ', '-')}:a.test"
        if room == "dm":
            await h.repos.rooms.add(room_id, "dm", None, sender, NOW)
        line, body = sample_args(cmd)
        code = "PHYS12 " if cmd.needs_class and room == "dm" else ""
        text = f"{name} {code}{line}".strip() + (f"\n{body}" if body else "")
        outcome = await h.dispatcher.handle(CommandEvent(sender, room_id, f"$cell-{name}-{role}-{room}", text))
        replies = [m.markdown for m in h.sent]
        expected = expected_allow(cmd, role, room)
        RESULTS[(name, role, room)] = (expected, outcome, replies[0] if replies else "")
        assert outcome is not Outcome.BUG, replies
        assert replies, "every command gets an answer"
        if expected:
            assert outcome is not Outcome.REFUSED, f"unexpected deny: {replies[0]}"
        else:
            assert outcome is Outcome.REFUSED, f"UNEXPECTED ALLOW ({outcome.value}): {replies}"
            assert len(replies[0]) < 300 and "Traceback" not in replies[0]
    finally:
        await db.close()
