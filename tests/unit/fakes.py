"""A recording fake of the room gateway, a frozen clock, and handler-test plumbing."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import commands
from commands.context import Message, NewRoom, Redaction, RoomChange, Services, Settings
from commands.dispatch import CommandEvent, Dispatcher
from storage.db import Database
from storage.repositories import Repositories

BOT = "@ako:a.test"
OPERATOR = "@it:a.test"


class FrozenClock:
    def __init__(self, moment: datetime):
        self.moment = moment

    def now(self) -> datetime:
        return self.moment

    def advance(self, **delta) -> datetime:
        """Move the frozen clock on: ``h.clock.advance(days=3, hours=2)``."""
        self.moment += timedelta(**delta)
        return self.moment


@dataclass
class FakeRooms:
    """Records every Matrix action a handler takes."""

    actions: list[tuple] = field(default_factory=list)
    events: dict[str, dict] = field(default_factory=dict)  # event id → event, for get_event
    joined: dict[str, set] = field(default_factory=dict)  # room id → members, for members()
    recorded: object = None  # async room id → members when a test set none (the Harness: a DM's owner and Ako)
    uploaded: dict[str, bytes] = field(default_factory=dict)  # mxc → the bytes uploaded
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def create_room(self, **kwargs) -> str:
        NewRoom(**kwargs)  # as the gateway reads them: a field it does not know fails here too
        key = kwargs.get("key")
        made = [a[1] for a in self.actions if a[0] == "create" and key is not None and a[2].get("key") == key]
        if made:  # as the homeserver does with the room's alias: the room made for this key before
            return made[0]
        room_id = f"!room{next(self._ids)}-{uuid.uuid4().hex[:8]}:a.test"  # unique across fakes sharing a database
        self.actions.append(("create", room_id, kwargs))
        return room_id

    async def add_child(self, space_id, room_id):
        self.actions.append(("child", space_id, room_id))

    async def invite(self, room_id, user_id):
        self.actions.append(("invite", room_id, user_id))

    async def kick(self, room_id, user_id, reason):
        self.actions.append(("kick", room_id, user_id))

    async def set_power(self, room_id, user_id, level):
        self.actions.append(("power", room_id, user_id, level))

    async def make_read_only(self, room_id, level):
        self.actions.append(("read-only", room_id, level))

    async def set_state(self, room_id, event_type, state_key, content):
        self.actions.append(("state", room_id, event_type, state_key, content))

    async def state(self, room_id, event_type, state_key=""):
        found = [a[4] for a in self.actions if a[:4] == ("state", room_id, event_type, state_key)]
        return found[-1] if found else None

    async def redact(self, room_id, event_id, reason):
        self.actions.append(("redact", room_id, event_id))
        if event_id in self.events:  # as a server does: the content is gone
            self.events[event_id] = {**self.events[event_id], "content": {}}

    async def upload(self, data, filename, mimetype):
        self.actions.append(("upload", filename, mimetype, len(data)))
        self.uploaded[f"mxc://a.test/{filename}"] = data
        return f"mxc://a.test/{filename}"

    async def get_event(self, room_id, event_id):
        event = self.events.get(event_id)
        return event if event is not None and event.get("room_id", room_id) == room_id else None

    async def members(self, room_id):
        if room_id not in self.joined and self.recorded is not None:
            return sorted(await self.recorded(room_id))
        return sorted(self.joined.get(room_id, set()))

    async def leave(self, room_id):
        self.actions.append(("leave", room_id))

    def post(self, room_id, sender, content, event_id=None) -> str:
        """Pretend a message was sent, so a command can reply to it; returns its event id."""
        event_id = event_id or f"$posted{len(self.events) + 1}"
        self.events[event_id] = {
            "type": "m.room.message", "room_id": room_id, "sender": sender, "event_id": event_id, "content": content,
        }
        return event_id

    def redactions(self) -> list[tuple[str, str]]:
        return [(a[1], a[2]) for a in self.actions if a[0] == "redact"]

    def states(self, event_type) -> list[tuple]:
        return [a for a in self.actions if a[0] == "state" and a[2] == event_type]

    def invites_of(self, user_id) -> list[str]:
        return [a[1] for a in self.actions if a[0] == "invite" and a[2] == user_id]


class Harness:
    """A dispatcher over a real migrated database, a fake gateway and a frozen clock."""

    def __init__(self, db: Database, clock: FrozenClock, matrix: FakeRooms, **settings):
        self.db = db
        self.clock = clock
        self.matrix = matrix
        self.sent: list[Message] = []
        defaults = dict(
            prefix="!", operators=frozenset({OPERATOR}), timezone="Pacific/Auckland", allow_guests=False,
            max_upload_mb=20, encrypt_work_rooms=False, bot_user_id=BOT,
        )
        defaults.update(settings)
        self.repos = Repositories.over(db)
        self.services = Services(self.repos, matrix, clock, Settings(**defaults))
        self.dispatcher = Dispatcher(commands.load(), self.services, self._enqueue)
        self._n = 0
        if matrix.recorded is None:
            matrix.recorded = self._recorded_members

    async def _recorded_members(self, room_id) -> set:
        """Unless a test says otherwise, a direct message holds its owner and Ako, as when it was made."""
        room = await self.repos.rooms.get(room_id)
        return {room.owner, self.services.settings.bot_user_id} if room is not None and room.kind == "dm" and room.owner else set()

    async def _enqueue(self, messages):
        """Messages are kept as sent; redactions go to the fake rooms, as the outbox would send them."""
        for m in messages:
            if isinstance(m, Redaction):
                await self.matrix.redact(m.room_id, m.event_id, m.reason)
            elif isinstance(m, RoomChange) and m.kind == "kick":
                await self.matrix.kick(m.room_id, m.user_id, m.reason)
            elif isinstance(m, RoomChange) and m.kind == "state":
                await self.matrix.set_state(m.room_id, m.event_type, "", m.content)
            elif isinstance(m, RoomChange):
                await self.matrix.leave(m.room_id)
            else:
                self.sent.append(m)

    async def run(self, sender: str, room_id: str, text: str, **kw) -> list[Message]:
        """Run one command (without its prefix) and return what it sent."""
        self._n += 1
        before = len(self.sent)
        await self.dispatcher.handle(CommandEvent(sender, room_id, f"$ev{self._n}", text.removeprefix("!"), **kw))
        return self.sent[before:]

    async def say(self, sender: str, room_id: str, text: str, **kw) -> str:
        out = await self.run(sender, room_id, text, **kw)
        return "\n".join(m.markdown for m in out)


# --- a class with learners from two schools, for the coursework tests

ADMIN_A, ADMIN_B = "@admin:a.test", "@admin:b.test"
TEACHER_A, TEACHER_B = "@teacher:a.test", "@teacher:b.test"
LEARNER_A, LEARNER_B, LEARNER_C = "@ana:a.test", "@ben:b.test", "@cat:c.test"
SHARED_DM = "!dm:a.test"


@dataclass
class Classroom:
    klass: object
    class_room: str
    staff_room: str
    work: dict  # learner → their work room id


async def classroom(h: Harness, code: str = "PHYS12", name: str = "Physics 12") -> Classroom:
    """Schools A and B with admins and a teacher each; a class taught by A's teacher, with Ana (A) and Ben (B)."""
    if await h.repos.rooms.get(SHARED_DM) is None:
        await h.repos.rooms.add(SHARED_DM, "dm", None, None, h.clock.now())
        await h.say(OPERATOR, SHARED_DM, '!school add a.test "Kura A"')
        await h.say(OPERATOR, SHARED_DM, '!school add b.test "Kura B"')
        await h.say(OPERATOR, SHARED_DM, f"!school admin a.test {ADMIN_A}")
        await h.say(OPERATOR, SHARED_DM, f"!school admin b.test {ADMIN_B}")
        await h.say(ADMIN_A, SHARED_DM, f"!staff add {TEACHER_A}")
        await h.say(ADMIN_B, SHARED_DM, f"!staff add {TEACHER_B}")
    await h.say(TEACHER_A, SHARED_DM, f'!class new "{name}" {code}')
    klass = await h.repos.classes.by_code(code)
    await h.say(LEARNER_A, SHARED_DM, f"!join {code}")
    await h.say(LEARNER_B, SHARED_DM, f"!join {code}")
    rooms = h.repos.rooms
    return Classroom(
        klass,
        (await rooms.of_class(klass.id, "class")).room_id,
        (await rooms.of_class(klass.id, "staff")).room_id,
        {u: (await rooms.work_room(klass.id, u)).room_id for u in (LEARNER_A, LEARNER_B)},
    )


async def class_rooms(h: Harness, code: str, learner: str) -> dict[str, str]:
    """The rooms of the class ``code`` by kind: "class", "staff", and "work" (``learner``'s)."""
    klass = await h.repos.classes.by_code(code)
    return {
        "class": (await h.repos.rooms.of_class(klass.id, "class")).room_id,
        "work": (await h.repos.rooms.work_room(klass.id, learner)).room_id,
        "staff": (await h.repos.rooms.of_class(klass.id, "staff")).room_id,
    }


def texts(messages, room_id=None) -> str:
    """The markdown of the messages (to one room), joined."""
    return "\n".join(m.markdown for m in messages if room_id is None or m.room_id == room_id)


class StatementCounter:
    """Counts what reaches SQLite on a database's connection: statements, and write transactions
    (each BEGIN IMMEDIATE … COMMIT is an fsync with synchronous=FULL). ``with counter:`` counts."""

    def __init__(self, db: Database):
        self.db = db
        self.statements: list[str] = []
        self.transactions = 0
        self._originals: dict = {}

    def __enter__(self) -> "StatementCounter":
        conn = self.db.conn
        self._originals = {name: getattr(conn, name) for name in ("execute", "execute_fetchall")}

        def counting(original):
            def count(sql, *args, **kwargs):
                if sql.startswith("BEGIN"):
                    self.transactions += 1
                elif sql not in ("COMMIT", "ROLLBACK"):
                    self.statements.append(" ".join(sql.split())[:80])
                return original(sql, *args, **kwargs)

            return count

        for name, original in self._originals.items():
            setattr(conn, name, counting(original))
        return self

    def __exit__(self, *exc) -> None:
        for name, original in self._originals.items():
            setattr(self.db.conn, name, original)
