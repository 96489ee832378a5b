"""Every command × every role × every kind of room, against a table written by hand from the spec.

The expected answers come from tests/authorisation_table.py (SPEC §1/§3 and the README's command
tables), never from the declarations under test. Each command is checked twice: its declaration
(`who`, `where`) against the table, and its behaviour — every cell through the same dispatcher the
bot uses, each on a fresh copy of one prepared database. A last test widens each declaration in
turn and shows that the check then fails.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

import commands
from commands.context import Role, Where
from commands.dispatch import CommandEvent, Outcome
from commands.registry import Command, registry
from storage.db import Database
from tests.authorisation_table import BY_COMMAND, TABLE, Row, allows

from .conftest import NOW
from .fakes import OPERATOR, FakeRooms, FrozenClock, Harness

ADMIN_A = "@admin:a.test"
STAFF_OTHER = "@staffer:a.test"  # staff, in no class
TEACHER = "@teacher:a.test"  # teaches PHYS12 and OTHER1, authored P1, set reminder R1
TEACHER_OTHER = "@tina:a.test"  # staff teaching OTHER2 only
LEARNER = "@ana:b.test"  # learner in PHYS12
OTHER_LEARNER = "@otto:b.test"  # a learner of OTHER1
STRANGER = "@cat:c.test"  # a server of no registered school
SOMEONE = "@sam:a.test"  # owns a DM with Ako, and is none of the above

ROLES = {
    "operator": OPERATOR,
    "school admin": ADMIN_A,
    "staff not in the class": STAFF_OTHER,
    "class teacher": TEACHER,
    "teacher of another class": TEACHER_OTHER,
    "learner": LEARNER,
    "learner of another class": OTHER_LEARNER,
    "unregistered server": STRANGER,
}

# What each of them is, in the table's words, in this module's database (written by hand: who
# created what in `prepared`). Commands about a class are sent for PHYS12 (in its rooms, or naming
# it); the samples below name OTHER1 (`!join`, `!assign copy`, `!programme use`/`import`), the
# programme P1 (not in the library) and the class reminder R1.
REGISTERED = "anyone from a registered school who does not teach the class"
HELD: dict[str, set[str]] = {
    "operator": {"operator"},
    "school admin": {
        "anyone", REGISTERED, "school admin", "a school admin, for their own school's learners",
        "a school admin of the user's server",  # the samples of !staff add/remove are on A
    },
    "staff not in the class": {"anyone", REGISTERED, "staff"},
    "class teacher": {
        "anyone", "staff", "teacher", "member", "a teacher of both classes", "a teacher of that class",
        "an author of the programme", "an author of the programme who teaches that class",
        "the reminder's owner, or a teacher of its class",
    },  # not REGISTERED: they teach OTHER1, the class `!join OTHER1` names
    "teacher of another class": {"anyone", REGISTERED, "staff"},
    "learner": {"anyone", REGISTERED, "member", "learner"},
    "learner of another class": {"anyone", REGISTERED},
    "unregistered server": {"anyone"},
}
# The school admin is A's; "school admin of the user's school" names the learner on B: nobody here.

ROOM_KINDS = ("class", "work", "staff", "dm", "other dm", "unknown")


def table_room(room: str, role: str) -> str:
    """The table's name for a room of this module, as seen by ``role``."""
    return {
        "class": "class room",
        "work": "own work room" if role == "learner" else "another's work room",  # the learner's work room
        "staff": "staff room",
        "dm": "own DM",
        "other dm": "another's DM",
        "unknown": "unknown room",
    }[room]


def expected_allow(row: Row, role: str, room: str) -> bool:
    return allows(row, HELD[role], table_room(room, role))


SAMPLES = {
    "AssignmentId": "A1",
    "AssignmentRef": "A1",
    "ClassCode": "OTHER1",
    "ClassRef": "OTHER1",
    "TaughtClass": "OTHER1",
    "UserId": LEARNER,
    "When": "friday 5pm",
    "CutoffOrOff": "off",
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
    "ReminderRef": "R1",
    "Days": "monday",
    "TimeOfDay": "9:00",
    "TopicId": "T1",
    "ProgrammeId": "P1",
    "ProgrammeRef": "P1",
    "AuthoredProgramme": "P1",
    "TopicRef": "T1",
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
        if p.optional and not p.body and type(p.type).__name__ not in (
            "ProgrammeId", "ProgrammeRef", "AuthoredProgramme", "AssignmentId", "AssignmentRef"
        ):
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


# --- the declarations against the table

# The part of each `who` word the dispatcher can check before reading the records the command
# names; a row whose words need different roles is declared for anyone, and its handler decides.
GATE = {
    "anyone": Role.ANYONE,
    "operator": Role.OPERATOR,
    "school admin": Role.SCHOOL_ADMIN,
    "staff": Role.STAFF,
    "teacher": Role.TEACHER,
    "member": Role.MEMBER,
    "learner": Role.LEARNER,
    REGISTERED: Role.ANYONE,
    "school admin of the user's school": Role.SCHOOL_ADMIN,
    "a school admin of the user's server": Role.SCHOOL_ADMIN,
    "a school admin, for their own school's learners": Role.SCHOOL_ADMIN,
    "a teacher of both classes": Role.TEACHER,
    "a teacher of that class": Role.STAFF,
    "an author of the programme": Role.STAFF,
    "an author of the programme who teaches that class": Role.STAFF,
    "anyone, for a programme in the library": Role.ANYONE,
    "the reminder's owner, or a teacher of its class": Role.ANYONE,
}
PLACE = {"any": Where.ANYWHERE, "class": Where.CLASS, "own work room or class room": Where.OWN_WORK_ROOM_OR_CLASS_ROOM}


def gate(row: Row) -> Role:
    roles = {GATE[w] for w in row.who}
    return roles.pop() if len(roles) == 1 else Role.ANYONE


def declaration_disagreements(cmd: Command) -> list[str]:
    row = BY_COMMAND[cmd.name]
    wrong = []
    if cmd.who is not gate(row):
        wrong.append(f"{cmd.name}: declared who={cmd.who.value}, the table says {' or '.join(row.who)} ({gate(row).value})")
    if cmd.where is not PLACE[row.where]:
        wrong.append(f"{cmd.name}: declared where={cmd.where.value}, the table says {row.where}")
    return wrong


# --- the behaviour against the table


@pytest.fixture(scope="module")
async def prepared(tmp_path_factory):
    """One prepared database: two schools, staff, classes with learners, an assignment, a programme, a reminder."""
    path = tmp_path_factory.mktemp("matrix") / "template.db"
    db = await Database.open(path)
    h = Harness(db, FrozenClock(NOW), FakeRooms())
    dm = "!dm:a.test"
    await h.repos.rooms.add(dm, "dm", None, OPERATOR, NOW)
    for line in ('!school add a.test "Kura A"', '!school add b.test "Kura B"', f"!school admin a.test {ADMIN_A}"):
        assert "Only" not in await h.say(OPERATOR, dm, line)
    await h.say(ADMIN_A, dm, f"!staff add {TEACHER} {STAFF_OTHER} {TEACHER_OTHER}")
    await h.say(TEACHER, dm, '!class new "Physics 12" PHYS12')
    await h.say(TEACHER, dm, '!class new "Other" OTHER1')
    await h.say(TEACHER_OTHER, dm, '!class new "Tina\'s class" OTHER2')
    await h.say(LEARNER, dm, "!join PHYS12")
    await h.say(OTHER_LEARNER, dm, "!join OTHER1")
    assert "A1" in await h.say(TEACHER, dm, '!assign new PHYS12 "Essay" due friday 5pm points 20')
    assert "Created **P1" in await h.say(TEACHER, dm, '!programme new "Forces"')
    assert "R1" in await h.say(TEACHER, dm, "!remind PHYS12 friday 5pm Bring calculators")
    await h.repos.rooms.add("!dm-someone:a.test", "dm", None, SOMEONE, NOW)
    klass = await h.repos.classes.by_code("PHYS12")
    rooms = {
        "class": (await h.repos.rooms.of_class(klass.id, "class")).room_id,
        "work": (await h.repos.rooms.work_room(klass.id, LEARNER)).room_id,
        "staff": (await h.repos.rooms.of_class(klass.id, "staff")).room_id,
        "other dm": "!dm-someone:a.test",
        "unknown": "!unknown:a.test",  # Ako has no record of it
    }
    await db.close()
    return path, rooms


RESULTS: dict[tuple, tuple[bool, Outcome, str]] = {}


async def cell(prepared, tmp_path, cmd: Command, role: str, room: str) -> tuple[Outcome, list[str]]:
    """Send one command from one person in one room, on a fresh copy of the prepared database."""
    path, rooms = prepared
    copy = tmp_path / "cell.db"
    shutil.copy(path, copy)
    db = await Database.open(copy)
    await db.conn.execute("PRAGMA synchronous=OFF")  # a cell's copy is thrown away: no need to wait for the disk
    try:
        h = Harness(db, FrozenClock(NOW), FakeRooms())
        sender = ROLES[role]
        room_id = rooms.get(room) or f"!dm-{role.replace(' ', '-')}:a.test"
        if room == "dm":
            await h.repos.rooms.add(room_id, "dm", None, sender, NOW)
        line, body = sample_args(cmd)
        code = "PHYS12 " if cmd.needs_class and room in ("dm", "other dm", "unknown") else ""
        text = f"{cmd.name} {code}{line}".strip() + (f"\n{body}" if body else "")
        outcome = await h.dispatcher.handle(CommandEvent(sender, room_id, f"$cell-{cmd.name}-{role}-{room}", text))
        return outcome, [m.markdown for m in h.sent]
    finally:
        await db.close()
        copy.unlink()


def judge(row: Row, expected: bool, outcome: Outcome, replies: list[str]) -> str | None:
    """What is wrong with one cell's answer, or None."""
    if outcome is Outcome.BUG:
        return f"a bug: {replies}"
    if not replies:
        return "no answer"
    if expected:
        return f"unexpected refusal: {replies[0]}" if outcome is Outcome.REFUSED else None
    if row.denied == "not found":
        return None if outcome in (Outcome.REFUSED, Outcome.USER_ERROR) else f"UNEXPECTED ALLOW ({outcome.value}): {replies}"
    if outcome is not Outcome.REFUSED:
        return f"UNEXPECTED ALLOW ({outcome.value}): {replies}"
    if len(replies[0]) >= 300 or "Traceback" in replies[0]:
        return f"refusal is not a short sentence: {replies[0][:400]}"
    return None


async def behaviour_disagreements(prepared, tmp_path, cmd: Command, *, first_only: bool = False, record: bool = False) -> list[str]:
    row = BY_COMMAND[cmd.name]
    wrong = []
    for role in ROLES:
        for room in ROOM_KINDS:
            expected = expected_allow(row, role, room)
            outcome, replies = await cell(prepared, tmp_path, cmd, role, room)
            problem = judge(row, expected, outcome, replies)
            if record:  # a denial the table words as "not found" counts as refused (tests/security_doc.py)
                seen = Outcome.REFUSED if not expected and problem is None else outcome
                RESULTS[(cmd.name, role, room)] = (expected, seen, replies[0] if replies else "")
            if problem:
                wrong.append(f"{cmd.name} | {role} | {room}: {problem}")
                if first_only:
                    return wrong
    return wrong


def test_the_table_has_one_row_per_command():
    declared = {cmd.name for cmd in commands.load().all()}
    assert declared - set(BY_COMMAND) == set(), "commands with no row in tests/authorisation_table.py"
    assert set(BY_COMMAND) - declared == set(), "rows for commands that do not exist"
    assert all(w in GATE for row in TABLE for w in row.who), "a `who` word this test does not know"


NAMES = [cmd.name for cmd in commands.load().all()]


@pytest.mark.parametrize("name", NAMES)
async def test_command_follows_the_table(prepared, tmp_path, name):
    cmd = commands.load().find(name)
    wrong = declaration_disagreements(cmd) + await behaviour_disagreements(prepared, tmp_path, cmd, record=True)
    assert wrong == [], "\n".join(wrong)


# --- the table bites: a declaration widened in turn fails the check

WIDER = {
    Role.OPERATOR: (Role.SCHOOL_ADMIN, Role.STAFF, Role.ANYONE),
    Role.SCHOOL_ADMIN: (Role.STAFF, Role.ANYONE),
    Role.STAFF: (Role.MEMBER, Role.ANYONE),
    Role.TEACHER: (Role.STAFF, Role.MEMBER, Role.ANYONE),
    Role.MEMBER: (Role.ANYONE,),
    Role.LEARNER: (Role.MEMBER, Role.ANYONE),
}
WIDENED = [(row.command, wider) for row in TABLE if gate(row) is not Role.ANYONE for wider in WIDER[gate(row)]]
PLAIN = {"operator", "school admin", "staff", "teacher", "member", "learner"}  # roles the dispatcher alone enforces


def widen(monkeypatch, name: str, who: Role) -> Command:
    cmd = registry.find(name)
    wider = dataclasses.replace(cmd, who=who)
    monkeypatch.setitem(registry.commands, name, wider)
    for key in (name, *cmd.aliases):
        monkeypatch.setitem(registry._by_alias, key, wider)
    return wider


@pytest.mark.parametrize("name, wider", WIDENED, ids=[f"{n}->{w.value}" for n, w in WIDENED])
async def test_a_wider_declaration_fails_the_matrix(prepared, tmp_path, monkeypatch, name, wider):
    """Every command the table gives to fewer than anyone, declared for a wider role: the declaration
    check fails; and where the table's role is one the dispatcher alone enforces, some cell's
    behaviour differs from the table too. (Rows whose rule reads the records the command names —
    an author of the programme, the user's own school, a teacher of both classes — are enforced
    again by their handlers, so for them only the declaration shows the widening.)"""
    cmd = widen(monkeypatch, name, wider)
    assert declaration_disagreements(cmd), f"{name} declared for {wider.value} still matches the table"
    if set(BY_COMMAND[name].who) <= PLAIN:
        assert await behaviour_disagreements(prepared, tmp_path, cmd, first_only=True), (
            f"{name} declared for {wider.value}: every cell still answers as the table says"
        )
