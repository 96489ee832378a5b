"""Which room keys a device gets once its owner's signature arrives (bot/late_keys.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.late_keys import KEEP, LateKeys, Owed


class Session:
    """What Ako reads of nio's outbound room key: its id, first key and who got it or was refused it."""

    def __init__(self, sid: str):
        self.id = sid
        self.session_key = f"first key of {sid}"
        self.users_shared_with: set[tuple[str, str]] = set()
        self.users_ignored: set[tuple[str, str]] = set()


class Clock:
    def __init__(self):
        self.t = datetime(2026, 12, 7, 9, tzinfo=timezone.utc)

    def now(self):
        return self.t


NEW = ("@mere:b.example", "NEWPHONE")


def made(late: LateKeys, room: str, sid: str, *, refused=(), shared=()) -> Session:
    s = Session(sid)
    late.made(room, s)
    s.session_key = "a later key"  # what nio would share now: Ako must give the first one
    s.users_ignored |= set(refused)
    s.users_shared_with |= set(shared)
    return s


def test_a_device_refused_while_unsigned_gets_the_first_keys_of_the_rooms_it_was_refused_in_once_signed():
    late = LateKeys(Clock().now)
    dm = made(late, "!dm", "s1", refused=[NEW])
    made(late, "!work", "s2", refused=[NEW])
    made(late, "!class", "s3", shared=[("@teacher:a.example", "LAPTOP")])  # she was never refused there
    late.refused_unsigned(*NEW)
    owed = late.signed(*NEW)
    assert sorted(owed, key=lambda o: o.room_id) == [Owed("!dm", "s1", "first key of s1"), Owed("!work", "s2", "first key of s2")]
    late.given(*NEW, "s1")
    assert NEW in dm.users_shared_with and NEW not in dm.users_ignored  # nio will not share it again


def test_each_key_is_owed_once():
    late = LateKeys(Clock().now)
    made(late, "!dm", "s1", refused=[NEW])
    late.refused_unsigned(*NEW)
    assert len(late.signed(*NEW)) == 1
    assert late.signed(*NEW) == []  # signed again (another key query): nothing more


def test_a_device_refused_for_its_server_gets_nothing_when_the_server_is_allowed_later():
    late = LateKeys(Clock().now)
    made(late, "!dm", "s1", refused=[NEW])
    late.refused_otherwise(*NEW)  # e.g. its server was blocked when the key was made
    assert late.signed(*NEW) == []
    late.refused_unsigned(*NEW)
    late.refused_otherwise(*NEW)  # the last reason counts
    assert late.signed(*NEW) == []


def test_a_device_that_was_not_in_the_room_when_the_key_was_made_gets_nothing():
    late = LateKeys(Clock().now)
    made(late, "!dm", "s1", refused=[("@mere:b.example", "OLDPHONE")])
    late.refused_unsigned(*NEW)
    assert late.signed(*NEW) == []


def test_keys_older_than_an_hour_are_forgotten():
    clock = Clock()
    late = LateKeys(clock.now)
    made(late, "!dm", "s1", refused=[NEW])
    clock.t += KEEP + timedelta(seconds=1)
    made(late, "!work", "s2", refused=[NEW])
    late.refused_unsigned(*NEW)
    assert [o.session_id for o in late.signed(*NEW)] == ["s2"]
