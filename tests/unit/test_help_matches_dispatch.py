"""`!help` lists a command exactly when the dispatcher would not refuse it, for every command, every
kind of room and every kind of caller (STYLE.md: help never lists what the dispatcher refuses).

Each command's handler is replaced by one that does nothing, so a command the dispatcher lets
through is not refused whatever its arguments; what is refused is refused for where or who. In a
room of no class a class command names its class by code: there it counts as allowed when the
dispatcher lets it through for at least one of the classes.
"""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest

import commands
from commands.dispatch import CommandEvent, Outcome
from commands.registry import registry
from storage.db import Database

from .conftest import NOW
from .fakes import OPERATOR, FakeRooms, FrozenClock, Harness

ADMIN = "@admin:a.test"
STAFF = "@staffer:a.test"  # staff, in no class
TEACHER = "@teacher:a.test"  # teaches PHYS12
TEACHER_OTHER = "@tina:a.test"  # teaches OTHER1
LEARNER = "@ana:b.test"  # learner in PHYS12
OTHER_LEARNER = "@otto:b.test"  # learner in OTHER1
REGISTERED = "@sam:a.test"  # from a registered school, in no class
STRANGER = "@cat:c.test"  # from a server of no registered school

CALLERS = {
    "operator": OPERATOR, "school admin": ADMIN, "staff in no class": STAFF, "teacher": TEACHER,
    "learner": LEARNER, "learner of another class": OTHER_LEARNER, "registered, in no class": REGISTERED,
    "unregistered server": STRANGER,
}
ROOMS = ("class room", "work room", "staff room", "DM", "unknown room")
CODES = ("PHYS12", "OTHER1")


@pytest.fixture(scope="module")
async def prepared(tmp_path_factory):
    """The module's classroom, made once: each test gets a fresh copy (``classroom``), so none reads
    what another's commands left (the answers and records of a hundred refusals pile up otherwise)."""
    path = tmp_path_factory.mktemp("help") / "help.db"
    db = await Database.open(path)
    h = Harness(db, FrozenClock(NOW), FakeRooms())
    dm = "!setup:a.test"
    await h.repos.rooms.add(dm, "dm", None, OPERATOR, NOW)
    for line in ('!school add a.test "Kura A"', '!school add b.test "Kura B"', f"!school admin a.test {ADMIN}"):
        await h.say(OPERATOR, dm, line)
    await h.say(ADMIN, dm, f"!staff add {TEACHER} {STAFF} {TEACHER_OTHER}")
    await h.say(TEACHER, dm, '!class new "Physics 12" PHYS12')
    await h.say(TEACHER_OTHER, dm, '!class new "Other" OTHER1')
    await h.say(LEARNER, dm, "!join PHYS12")
    await h.say(OTHER_LEARNER, dm, "!join OTHER1")
    klass = await h.repos.classes.by_code("PHYS12")
    assert klass is not None and await h.repos.classes.role_of(klass.id, LEARNER) == "learner"
    rooms = {
        "class room": (await h.repos.rooms.of_class(klass.id, "class")).room_id,
        "work room": (await h.repos.rooms.work_room(klass.id, LEARNER)).room_id,  # the learner's own
        "staff room": (await h.repos.rooms.of_class(klass.id, "staff")).room_id,
        "unknown room": "!unknown:a.test",
    }
    for name, user in CALLERS.items():
        await h.repos.rooms.add(f"!dm-{name.replace(' ', '-').replace(',', '')}:a.test", "dm", None, user, NOW)
    await db.close()
    return path, rooms, h._n


@pytest.fixture
async def classroom(prepared, tmp_path):
    path, rooms, handled = prepared
    copy = tmp_path / "help.db"
    shutil.copy(path, copy)
    db = await Database.open(copy)
    await db.conn.execute("PRAGMA synchronous=OFF")  # a throw-away copy: no need to wait for the disk
    h = Harness(db, FrozenClock(NOW), FakeRooms())
    h._n = handled  # the event ids the set-up used are handled already: go on from there
    yield h, rooms
    await db.close()


def room_of(rooms: dict, room: str, caller: str) -> str:
    return rooms.get(room) or f"!dm-{caller.replace(' ', '-').replace(',', '')}:a.test"


def listed(help_text: str) -> set[str]:
    """The commands a `!help` answer lists, by name (each line shows the command's usage, which for
    `!assign edit A1 due …` has a word of the name after the first argument)."""
    names = {c.usage("!"): c.name for c in registry.all()}
    return {names[usage] for usage in re.findall(r"^- `(![^`]*)`", help_text, re.M)}


@pytest.fixture
def do_nothing(monkeypatch):
    """Every command's handler but !help's replaced by one that does nothing: only the dispatcher's checks answer."""

    async def nothing(ctx, **args):
        pass

    for cmd in registry.all():
        if cmd.name == "help":
            continue
        stub = dataclasses.replace(cmd, handler=nothing)
        monkeypatch.setitem(registry.commands, cmd.name, stub)
        for key in (cmd.name, *cmd.aliases):
            monkeypatch.setitem(registry._by_alias, key, stub)


async def dispatcher_allows(h: Harness, cmd, user: str, room_id: str, with_code: bool) -> bool:
    tries = [f"{cmd.name} {code}" for code in CODES] if with_code else [cmd.name]
    for text in tries:
        h._n += 1
        outcome = await h.dispatcher.handle(CommandEvent(user, room_id, f"$help-check-{h._n}", text))
        assert outcome is not Outcome.BUG, f"{text} from {user} in {room_id}: {h.sent[-1].markdown}"
        if outcome is not Outcome.REFUSED:
            return True
    return False


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("room", ROOMS)
async def test_help_lists_exactly_what_the_dispatcher_allows(classroom, do_nothing, caller, room):
    h, rooms = classroom
    user, room_id = CALLERS[caller], room_of(rooms, room, caller)
    with_code = room in ("DM", "unknown room")
    shown = listed(await h.say(user, room_id, "!help"))
    allowed = set()
    for cmd in commands.load().all():
        if await dispatcher_allows(h, cmd, user, room_id, with_code and cmd.needs_class):
            allowed.add(cmd.name)
    assert shown - allowed == set(), f"!help lists what the dispatcher refuses ({caller}, {room})"
    assert allowed - shown == set(), f"!help leaves out what the dispatcher allows ({caller}, {room})"
    assert "help" in shown


async def test_help_for_one_command_says_where_and_its_checks(classroom):
    h, rooms = classroom
    dm = room_of(rooms, "DM", "learner")
    submit = await h.say(LEARNER, dm, "!help submit")
    assert "Who: learners of the class · where: your own work room or the class room." in submit
    assert "put the class code first" not in submit  # it does not run in a direct message
    join = await h.say(STRANGER, room_of(rooms, "DM", "unregistered server"), "!help join")
    assert "Only from the server of a registered school." in join
    refused = await h.say(STRANGER, room_of(rooms, "DM", "unregistered server"), "!join PHYS12")
    assert refused == (
        "c.test is not the server of a school in this cluster, so @cat:c.test cannot join classes. "
        "Ask your school's IT admin to have the school registered."
    )
