"""Posting an assignment in the class room, now or when its publish time comes, and keeping the
class room's state record of it (``nz.ako.assignment``) up to date."""

from __future__ import annotations

import logging
from dataclasses import replace
from zoneinfo import ZoneInfo

from storage.coursework import Assignment
from storage.models import Class, RoomKind, to_text

from . import when
from .context import GatewayError, Message, OnServices, ScheduledPoster, Services
from .converters import number
from .errors import NotFound

log = logging.getLogger("ako.publishing")

# Ako's record of an assignment, written into the class room: state key = the short id (A1).
STATE_ASSIGNMENT = "nz.ako.assignment"
DEFAULT_POINTS = 100.0
STATE_DESCRIPTION_BYTES = 40_000


def cut_to_bytes(text: str, limit: int) -> str:
    """The text, cut short with "…" when its UTF-8 is longer than ``limit`` bytes (a state event's budget)."""
    if len(text.encode()) <= limit:
        return text
    return text.encode()[:limit].decode(errors="ignore") + "…"


def due_text(a: Assignment, tz: ZoneInfo) -> str:
    text = f"Due **{when.show(a.due_at, tz)}**"
    if a.cutoff_at is not None:
        text += f" · late work accepted until {when.show(a.cutoff_at, tz)}"
    return text


def announcement(a: Assignment, tz: ZoneInfo, prefix: str) -> str:
    lines = [f"**{a.label}** · {number(a.points)} points", due_text(a, tz)]
    if a.description:
        lines += ["", a.description, ""]
    lines.append(
        f"Hand it in from your work room: `{prefix}submit {a.short_id} …`, alone or as a reply to your message or file."
    )
    return "\n".join(lines)


def state_content(a: Assignment, klass: Class) -> dict:
    """The assignment as a state event, so every school's server holds the class's coursework.

    A description long enough to push the event past Matrix's 64 KiB limit is cut short there
    (the database and the class-room post keep all of it).
    """
    description = cut_to_bytes(a.description, STATE_DESCRIPTION_BYTES)
    return {
        "id": a.short_id,
        "class": klass.code,
        "title": a.title,
        "description": description,
        "description_cut": description != a.description,
        "points": a.points,
        "due": to_text(a.due_at),
        "cutoff": to_text(a.cutoff_at) if a.cutoff_at else None,
        "timezone": klass.timezone,
        "closed": a.closed,
        "published": to_text(a.published_at) if a.published_at else None,
    }


async def write_state(poster: OnServices, klass: Class, a: Assignment) -> None:
    """Keep the class room's record of a posted assignment up to date."""
    room = await poster.repos.rooms.of_class(klass.id, RoomKind.CLASS)
    if room is not None and a.published:
        await poster.matrix.set_state(room.room_id, STATE_ASSIGNMENT, a.short_id, state_content(a, klass))


async def publish(poster: OnServices, klass: Class, a: Assignment) -> Assignment:
    """Write the assignment's state event and post it in the class room; marks it published.

    The state event goes first: when the server refuses it, nothing is recorded or queued.
    """
    room = await poster.repos.rooms.of_class(klass.id, RoomKind.CLASS)
    if room is None:
        raise NotFound(f"{klass.name} has no class room to post {a.short_id} in.")
    posted = replace(a, published_at=poster.now)
    await poster.matrix.set_state(room.room_id, STATE_ASSIGNMENT, a.short_id, state_content(posted, klass))
    await poster.repos.assignments.mark_published(a.id, poster.now)
    poster.send(room.room_id, announcement(posted, ZoneInfo(klass.timezone), poster.prefix))
    return posted


async def publish_due(services: Services) -> list[Message]:
    """For the scheduler: post every assignment whose publish time has come.

    Call it inside one ``db.transaction()`` and enqueue the returned messages in the same
    transaction, as the dispatcher does for a command: an assignment is then posted once.
    """
    poster = ScheduledPoster(services)
    for a in await services.repos.assignments.due_for_publishing(poster.now):
        klass = await services.repos.classes.get(a.class_id)
        if klass is None or klass.archived:
            continue
        try:
            await publish(poster, klass, a)
        except (GatewayError, NotFound) as e:  # left unpublished: the next run tries again
            log.warning("Could not post %s of class %s yet: %s", a.short_id, a.class_id, e)
    return poster.outgoing
