"""Typed records, as the classroom names them."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timezone

# Matrix user ids (spec appendix "User Identifiers"), ASCII only: a lookalike letter from another
# script is refused rather than matched to a real account. USER_ID matches a whole id; USER_ID_IN_TEXT
# finds ids written in a message.
_USER_ID = r"@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d{1,5})?"
USER_ID = re.compile(rf"^{_USER_ID}\Z")
USER_ID_IN_TEXT = re.compile(_USER_ID)


def to_text(moment: datetime) -> str:
    """Store times as UTC ISO text, so they sort and compare as strings."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def server_of(user_id: str) -> str:
    """The homeserver name in a Matrix user id: ``@ana:school-b.example`` → ``school-b.example``."""
    return user_id.split(":", 1)[1] if ":" in user_id else ""


class Titled:
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
