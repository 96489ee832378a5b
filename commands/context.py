"""What a handler is given: who is asking, where, for which class, and the ports to the world.

Handlers never see matrix-nio. They talk to Matrix through ``ctx.matrix``, a :class:`RoomGateway`
(rooms, invites, power levels, state, media) and answer through :meth:`Context.reply`, which the
bot turns into events queued in the outbox in the same transaction as the handler's records.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from collections.abc import Sequence
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from storage.models import Class, ClassRole, Room, RoomKind, School, server_of
from storage.repositories import Repositories


class Role(enum.Enum):
    """Who may run a command (SPEC §1). Operators may run everything."""

    ANYONE = "anyone"
    OPERATOR = "operator"
    SCHOOL_ADMIN = "school admin"
    STAFF = "staff"
    TEACHER = "class teacher"
    MEMBER = "class member"  # a teacher or a learner of the class
    LEARNER = "learner"


class Where(enum.Enum):
    """Where a command may run."""

    ANYWHERE = "anywhere"
    CLASS = "class"  # any room of a class, or a DM naming the class by its code
    CLASS_ROOM = "class room"
    WORK_ROOM = "work room"
    OWN_WORK_ROOM_OR_CLASS_ROOM = "your own work room or the class room"
    DM = "direct message"


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class NewRoom:
    """A room (or space) for :meth:`RoomGateway.create_room` to make."""

    name: str
    topic: str = ""
    space: bool = False
    parent: str | None = None  # the space it belongs to
    invite: Sequence[str] = ()
    power: dict[str, int] | None = None
    history_visibility: str = "shared"
    join_rule: str = "invite"
    encrypted: bool = False
    events_default: int = 0
    direct: bool = False
    directory: bool = False  # listed in the server's public room directory
    alias: str | None = None  # local part of a canonical alias on the bot's server (ako-library → #ako-library:<server>)
    guest_access: str = "forbidden"
    key: str | None = None  # names the room before it exists: the same key, the same room (a replay)


class RoomGateway(Protocol):
    """The Matrix actions handlers may take. Every method raises ``GatewayError`` on failure."""

    async def create_room(self, **room: Any) -> str:
        """Make the room a :class:`NewRoom` with these fields describes (``name=…, invite=[…]``); its id."""

    async def add_child(self, space_id: str, room_id: str) -> None: ...

    async def invite(self, room_id: str, user_id: str) -> None: ...

    async def kick(self, room_id: str, user_id: str, reason: str) -> None: ...

    async def set_power(self, room_id: str, user_id: str, level: int) -> None: ...

    async def make_read_only(self, room_id: str, level: int) -> None:
        """Only users at ``level`` or above may post from now on."""

    async def set_state(self, room_id: str, event_type: str, state_key: str, content: dict) -> None: ...

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict | None:
        """The content of one state event, or None when the room has none."""

    async def redact(self, room_id: str, event_id: str, reason: str) -> None: ...

    async def upload(self, data: bytes, filename: str, mimetype: str) -> str: ...

    async def get_event(self, room_id: str, event_id: str) -> dict | None: ...

    async def members(self, room_id: str) -> list[str]:
        """Users joined to or invited into the room, as the bot's server sees it."""

    async def leave(self, room_id: str) -> None: ...


class GatewayError(Exception):
    """A Matrix request failed; the text is for logs, not for rooms."""


class Timetable(Protocol):
    """The scheduler's clock, as handlers see it: the database says what is due and when;
    a handler that changed it says so, and the clock re-reads it after the transaction."""

    def changed(self) -> None: ...


class NoTimetable:
    """No scheduler running (tests, ``ako check``): changes are picked up at the next start."""

    def changed(self) -> None:
        pass


@dataclass(frozen=True)
class Settings:
    """The part of the config handlers need."""

    prefix: str
    operators: frozenset[str]
    timezone: str
    allow_guests: bool
    max_upload_mb: int
    encrypt_work_rooms: bool
    bot_user_id: str
    reminder_offsets: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=1))
    reminder_grace: timedelta = timedelta(hours=1)


@dataclass
class Services:
    repos: Repositories  # the records (``repos.rooms`` is the table of Ako's rooms)
    matrix: RoomGateway  # the homeserver: rooms to make, invites, state, media
    clock: Clock
    settings: Settings
    timetable: Timetable = field(default_factory=NoTimetable)


@dataclass(frozen=True)
class Caller:
    user_id: str
    is_operator: bool
    admin_of: frozenset[str]  # servers whose school admin this user is
    is_staff: bool
    school: School | None  # the registered school of the user's server
    class_role: ClassRole | None  # in the context's class

    @property
    def server(self) -> str:
        return server_of(self.user_id)

    def has(self, role: Role) -> bool:
        if self.is_operator or role is Role.ANYONE:
            return True
        return {
            Role.OPERATOR: False,
            Role.SCHOOL_ADMIN: bool(self.admin_of),
            Role.STAFF: self.is_staff,
            Role.TEACHER: self.class_role == ClassRole.TEACHER,
            Role.MEMBER: self.class_role is not None,
            Role.LEARNER: self.class_role == ClassRole.LEARNER,
        }[role]


@dataclass(frozen=True)
class Media:
    """A file already in the media repository (``mxc://``), sent as its own event: ``m.image`` for
    pictures, ``m.file`` and the like for the rest, so any client shows or opens it."""

    url: str
    name: str
    mimetype: str | None = None
    size: int | None = None
    width: int | None = None  # pixels, for images
    height: int | None = None

    @property
    def msgtype(self) -> str:
        kind = (self.mimetype or "").split("/", 1)[0]
        return {"image": "m.image", "video": "m.video", "audio": "m.audio"}.get(kind, "m.file")


@dataclass(frozen=True)
class Message:
    """A reply or notice to send, in markdown. ``mentions`` are the only users pinged."""

    room_id: str
    markdown: str
    mentions: tuple[str, ...] = ()
    reply_to: str | None = None
    thread_root: str | None = None
    room_mention: bool = False
    file: tuple[bytes, str, str] | None = None  # (data, filename, mimetype): sent as m.file
    txn_key: str | None = None  # a stable key makes the send idempotent across replays
    media: Media | None = None  # sent as that media's event, the markdown as its caption


class OnServices:
    """What anything acting for Ako sees of its services: records, rooms, the time, the settings.
    A command's :class:`Context` and the scheduler's poster both are."""

    services: Services
    outgoing: list[Message | Redaction]

    @property
    def now(self) -> datetime:
        return self.services.clock.now()

    @property
    def repos(self) -> Repositories:
        return self.services.repos

    @property
    def matrix(self) -> RoomGateway:
        return self.services.matrix

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def prefix(self) -> str:
        return self.services.settings.prefix

    def send(self, room_id: str, markdown: str, **kwargs: Any) -> None:
        """A notice to another room (a work room, the class room, a DM)."""
        self.outgoing.append(Message(room_id, markdown, **kwargs))

    def redact(self, room_id: str, event_id: str, reason: str) -> None:
        """Take an event out of a room, once this handler's records are committed."""
        self.outgoing.append(Redaction(room_id, event_id, reason))

    def remove_from_room(self, room_id: str, user_id: str, reason: str) -> None:
        """Kick someone out of a room, once this handler's records are committed."""
        self.outgoing.append(RoomChange(room_id, "kick", user_id, reason))

    def leave_room(self, room_id: str) -> None:
        """Ako leaves a room, once this handler's records are committed (after what it queued there)."""
        self.outgoing.append(RoomChange(room_id, "leave"))

    def set_room_state(self, room_id: str, event_type: str, content: dict) -> None:
        """Write a state event (state key "") once this handler's records are committed: a rate limit
        on state events never holds the database."""
        self.outgoing.append(RoomChange(room_id, "state", event_type=event_type, content=content))


@dataclass(frozen=True)
class Redaction:
    """An event to take out of a room: sent through the outbox after the replies queued before it,
    so that a handler never waits on the homeserver (or its rate limit) to redact."""

    room_id: str
    event_id: str
    reason: str


@dataclass(frozen=True)
class RoomChange:
    """A kick, Ako's leave or a state event, sent through the outbox like a redaction: in order with
    what was queued for the room before it, once, and never while a handler holds the database."""

    room_id: str
    kind: str  # "kick" | "leave" | "state"
    user_id: str | None = None
    reason: str = ""
    event_type: str | None = None  # state: its type (state key "")
    content: dict | None = None  # state: its content


@dataclass
class ScheduledPoster(OnServices):
    """What acts for the scheduler, which has no command context: it collects the messages."""

    services: Services
    outgoing: list[Message] = field(default_factory=list)


@dataclass
class Context(OnServices):
    caller: Caller
    room_id: str
    room: Room | None
    klass: Class | None
    event_id: str
    thread_root: str | None
    reply_to: str | None
    services: Services
    command_name: str = ""
    event: dict | None = None  # the raw event, for listeners (thread replies, …)
    outgoing: list[Message | Redaction] = field(default_factory=list)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.klass.timezone if self.klass else self.services.settings.timezone)

    @property
    def in_dm(self) -> bool:
        return self.room is not None and self.room.kind == RoomKind.DM

    def reply(
        self, markdown: str, *, mentions: tuple[str, ...] = (), file: tuple[bytes, str, str] | None = None,
        media: Media | None = None,
    ) -> None:
        """Answer where the command was asked: in its thread, as a reply to it."""
        self.outgoing.append(
            Message(
                self.room_id, markdown, mentions, reply_to=self.event_id, thread_root=self.thread_root, file=file, media=media
            )
        )

