"""Typed records, as the classroom names them."""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar, TypeVar

# Matrix user ids (spec appendix "User Identifiers"), ASCII only: a lookalike letter from another
# script is refused rather than matched to a real account. USER_ID matches a whole id; USER_ID_IN_TEXT
# finds ids written in a message.
_USER_ID = r"@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d{1,5})?"
USER_ID = re.compile(rf"^{_USER_ID}\Z")
USER_ID_IN_TEXT = re.compile(_USER_ID)


def to_text(moment: datetime | None) -> str | None:
    """Store times as UTC ISO text, so they sort and compare as strings (no time stays NULL)."""
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


R = TypeVar("R")


def from_row(record: type[R], row, **given: Any) -> R:
    """A record from a database row: each field of the dataclass from the column of its name, read
    as its type says (times from their text, flags with ``bool``, enums by their value, dicts from
    JSON). ``given`` holds the fields that are not one column taken as it is."""
    return record(**{name: read(row[name]) for name, read in _readers(record) if name not in given}, **given)


@functools.cache
def _readers(record: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    hints = typing.get_type_hints(record)
    return tuple((f.name, _reader(hints[f.name])) for f in dataclasses.fields(record))


def _reader(hint) -> Callable[[Any], Any]:
    """How a column's value becomes a field of type ``hint`` (``X | None`` keeps NULL as None)."""
    union = isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] if union else [hint]
    kind = kinds[0] if len(kinds) == 1 else None
    if kind is datetime:
        return from_text
    if kind is bool:
        read = bool
    elif isinstance(kind, type) and issubclass(kind, enum.Enum):
        read = kind
    elif kind is dict or typing.get_origin(kind) is dict:
        read = json.loads
    else:
        return _as_it_is
    return _or_none(read) if union else read


def _as_it_is(value):
    return value


def _or_none(read: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else read(value)


def server_of(user_id: str) -> str:
    """The homeserver name in a Matrix user id: ``@ana:school-b.example`` → ``school-b.example``."""
    return user_id.split(":", 1)[1] if ":" in user_id else ""


class ShortId:
    """A record people name by a letter and its number: A3 (an assignment), T2 (a topic), R17."""

    letter: ClassVar[str]
    numbered_by: ClassVar[str] = "number"

    @property
    def short_id(self) -> str:
        return f"{self.letter}{getattr(self, self.numbered_by)}"


class Titled(ShortId):
    """A record shown as ``<short id> — <title>`` (an assignment, a programme), published once it
    has a ``published_at``."""

    @property
    def label(self) -> str:
        return f"{self.short_id} — {self.title}"

    @property
    def published(self) -> bool:
        return self.published_at is not None


@dataclass(frozen=True)
class School:
    server: str
    name: str
    admins: tuple[str, ...] = ()


@dataclass(frozen=True)
class Class:
    id: int
    name: str
    code: str
    code_enabled: bool
    timezone: str
    server: str
    created_by: str
    archived: bool

    @property
    def label(self) -> str:
        return f"{self.name} ({self.code})"


class ClassRole(enum.StrEnum):
    """What someone is in a class (stored as its text)."""

    TEACHER = "teacher"
    LEARNER = "learner"


class RoomKind(enum.StrEnum):
    """What a room of Ako's is for (stored as its text)."""

    SPACE = "space"
    CLASS = "class"
    STAFF = "staff"
    WORK = "work"
    DM = "dm"


@dataclass(frozen=True)
class Member:
    user_id: str
    role: ClassRole

    @property
    def server(self) -> str:
        return server_of(self.user_id)


@dataclass(frozen=True)
class Room:
    room_id: str
    kind: RoomKind
    class_id: int | None
    owner: str | None
