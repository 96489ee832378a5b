"""Matrix side effects a rollback cannot undo (issue 16, item 10): a room is named by its command
before it is created, so a command handled again after a crash reuses it; one learner whose invite
fails does not undo (or orphan) the others' enrolment."""

from __future__ import annotations

import pytest

from commands.context import GatewayError
from commands.dispatch import CommandEvent, Outcome

from .conftest import NOW
from .fakes import SHARED_DM, TEACHER_A, FakeRooms, FrozenClock, Harness, classroom

ZED = "@zed:a.test"


class Crash(BaseException):
    """The process dying mid-command (as SIGKILL would): not an error any handler catches."""


class CrashingRooms(FakeRooms):
    def __init__(self, crash_at_create: int | None = None, refuse_invites_of: str | None = None):
        super().__init__()
        self.crash_at_create = crash_at_create
        self.refuse_invites_of = refuse_invites_of
        self.creates = 0

    async def create_room(self, **kwargs) -> str:
        room_id = await super().create_room(**kwargs)
        self.creates += 1
        if self.creates == self.crash_at_create:
            raise Crash()
        return room_id

    async def invite(self, room_id, user_id):
        if user_id == self.refuse_invites_of:
            raise GatewayError(f"Inviting {user_id} to {room_id} failed: M_FORBIDDEN their server refused")
        await super().invite(room_id, user_id)


def rooms_made(rooms: FakeRooms) -> set[str]:
    return {a[1] for a in rooms.actions if a[0] == "create"}


async def test_class_new_handled_again_after_a_crash_mid_way_makes_no_second_rooms(db):
    rooms = CrashingRooms()
    h = Harness(db, FrozenClock(NOW), rooms)
    await classroom(h)  # schools, staff
    before = rooms_made(rooms)
    rooms.crash_at_create = rooms.creates + 2  # the space and the class room exist, then the process dies
    event = CommandEvent(TEACHER_A, SHARED_DM, "$class-new-1", 'class new "Chemistry 12" CHEM12')
    with pytest.raises(Crash):
        await h.dispatcher.handle(event)
    assert await h.repos.classes.by_code("CHEM12") is None  # rolled back with the transaction
    assert len(rooms_made(rooms) - before) == 2
    rooms.crash_at_create = None
    assert await h.dispatcher.handle(event) == Outcome.DONE  # the same event, read again after the restart
    klass = await h.repos.classes.by_code("CHEM12")
    recorded = {r.room_id for r in await h.repos.rooms.all_of_class(klass.id)}
    assert len(recorded) == 3
    assert rooms_made(rooms) - before == recorded, "the space and class room made before the crash are the ones used"


async def test_a_class_code_made_up_is_the_same_when_the_command_is_handled_again(db):
    rooms = CrashingRooms()
    h = Harness(db, FrozenClock(NOW), rooms)
    await classroom(h)
    rooms.crash_at_create = rooms.creates + 1
    event = CommandEvent(TEACHER_A, SHARED_DM, "$class-new-2", 'class new "Biology"')
    with pytest.raises(Crash):
        await h.dispatcher.handle(event)
    first_topic = [a[2]["topic"] for a in rooms.actions if a[0] == "create"][-1]
    rooms.crash_at_create = None
    await h.dispatcher.handle(event)
    [klass] = [k for k, _ in await h.repos.classes.of_user(TEACHER_A) if k.name == "Biology"]
    assert klass.code in first_topic  # the rooms made before the crash name the code the class has


async def test_join_handled_again_after_a_crash_makes_no_second_work_room(db):
    rooms = CrashingRooms()
    h = Harness(db, FrozenClock(NOW), rooms)
    c = await classroom(h)
    newcomer = "@newcomer:a.test"
    before = rooms_made(rooms)
    rooms.crash_at_create = rooms.creates + 1  # the work room exists, then the process dies
    event = CommandEvent(newcomer, "!newcomer-dm:a.test", "$join-1", f"join {c.klass.code}")
    with pytest.raises(Crash):
        await h.dispatcher.handle(event)
    rooms.crash_at_create = None
    assert await h.dispatcher.handle(event) == Outcome.DONE
    work = await h.repos.rooms.work_room(c.klass.id, newcomer)
    assert rooms_made(rooms) - before == {work.room_id}


async def test_one_learner_whose_invite_fails_leaves_the_others_added_and_a_retry_makes_no_second_rooms(db):
    rooms = CrashingRooms(refuse_invites_of=ZED)
    h = Harness(db, FrozenClock(NOW), rooms)
    c = await classroom(h)
    newcomers = ["@xena:a.test", "@yuri:a.test"]
    before = rooms_made(rooms)
    reply = await h.say(TEACHER_A, c.class_room, f"!class add {newcomers[0]} {newcomers[1]} {ZED}")
    assert f"{newcomers[0]} added" in reply and f"{newcomers[1]} added" in reply
    assert f"{ZED} could not be invited" in reply and "M_FORBIDDEN" not in reply
    for user in newcomers:
        assert await h.repos.classes.role_of(c.klass.id, user) == "learner"
        assert await h.repos.rooms.work_room(c.klass.id, user) is not None
    assert await h.repos.classes.role_of(c.klass.id, ZED) is None
    assert len(rooms_made(rooms) - before) == 2  # nothing made for Zed
    rooms.refuse_invites_of = None
    reply = await h.say(TEACHER_A, c.class_room, f"!class add {newcomers[0]} {newcomers[1]} {ZED}")  # the teacher tries again
    assert f"{ZED} added" in reply
    made = rooms_made(rooms) - before
    assert len(made) == 3, "one work room each, none twice"
    assert {(await h.repos.rooms.work_room(c.klass.id, u)).room_id for u in [*newcomers, ZED]} == made


async def test_programme_and_subject_rooms_handled_again_after_a_crash_are_not_made_twice(db):
    """The same for the rooms of `!programme new` and `!staffroom subject`."""
    rooms = CrashingRooms()
    h = Harness(db, FrozenClock(NOW), rooms)
    await classroom(h)
    for n, (text, made) in enumerate((('programme new "Waves"', 1), ('staffroom subject "Physics"', 1))):
        before = rooms_made(rooms)
        rooms.crash_at_create = rooms.creates + 1
        event = CommandEvent(TEACHER_A, SHARED_DM, f"$made-{n}", text)
        with pytest.raises(Crash):
            await h.dispatcher.handle(event)
        rooms.crash_at_create = None
        assert await h.dispatcher.handle(event) == Outcome.DONE
        assert len(rooms_made(rooms) - before) == made, f"{text}: a second room after the replay"
