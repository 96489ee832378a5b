"""Who may run a command and where, as declared: read by the dispatcher (to refuse) and by ``!help``
(to list only what the dispatcher allows), so the two cannot disagree.

A :class:`Check` is discord.py's ``@commands.check``: a test of the caller and the room, with its own
refusal sentence and its line of help. What depends on the records a command names (an author of
the programme, a teacher of the other class) stays in the handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from storage.models import RoomKind

from .context import Context, Role, Where

if TYPE_CHECKING:
    from .registry import Command


@dataclass(frozen=True)
class Check:
    """``allows(ctx)``; otherwise ``refusal``, with ``{prefix}``, ``{command}``, ``{klass}``, ``{user}``
    and ``{server}`` (the caller's) filled in."""

    allows: Callable[[Context], bool]
    refusal: str
    help: str


def where_allows(where: Where, ctx: Context) -> bool:
    """Whether a command declared for ``where`` runs in the context's room. A class command in a room
    of no class names the class by its code, so ``Where.CLASS`` runs anywhere."""
    room = ctx.room
    kind = room.kind if room else None
    if where is Where.CLASS_ROOM:
        return kind == RoomKind.CLASS
    if where is Where.WORK_ROOM:
        return kind == RoomKind.WORK
    if where is Where.OWN_WORK_ROOM_OR_CLASS_ROOM:
        return kind == RoomKind.CLASS or (kind == RoomKind.WORK and room.owner == ctx.caller.user_id)
    if where is Where.DM:
        return kind == RoomKind.DM
    return True


_WHERE_REFUSAL = {
    Where.CLASS_ROOM: "{prefix}{command} works in a class room.",
    Where.WORK_ROOM: "{prefix}{command} works in your work room for the class.",
    Where.OWN_WORK_ROOM_OR_CLASS_ROOM: "{prefix}{command} works in your own work room for {klass}, where your work stays private.",
    Where.DM: "{prefix}{command} works in a direct message with me.",
}

_NEEDED = {
    Role.OPERATOR: "an operator of this Ako",
    Role.SCHOOL_ADMIN: "a school admin",
    Role.STAFF: "staff of a registered school",
    Role.TEACHER: "a teacher of {klass}",
    Role.MEMBER: "a member of {klass}",
    Role.LEARNER: "a learner in {klass}",
}


def refusal(cmd: Command, ctx: Context) -> str | None:
    """Why the dispatcher refuses ``cmd`` for this caller in this room (and class), or None."""
    values = {
        "prefix": ctx.prefix, "command": cmd.name, "klass": ctx.klass.name if ctx.klass else "the class",
        "user": ctx.caller.user_id, "server": ctx.caller.server,
    }
    if not ctx.caller.has(cmd.who):  # first: someone who may not run it anywhere is told so
        return f"Only {_NEEDED[cmd.who]} can use {{prefix}}{{command}}.".format(**values)
    if not where_allows(cmd.where, ctx):
        return _WHERE_REFUSAL[cmd.where].format(**values)
    for check in cmd.checks:
        if not (ctx.caller.is_operator or check.allows(ctx)):
            return check.refusal.format(**values)
    klass = ctx.klass
    if klass is not None and klass.archived and not cmd.reads_only and not ctx.caller.is_operator:
        return f"{klass.name} is archived: it can be read, not changed."
    return None


# --- the checks commands declare

FROM_A_SCHOOL = Check(
    lambda ctx: ctx.settings.allow_guests or ctx.caller.school is not None,
    "{server} is not the server of a school in this cluster, so {user} cannot join classes. "
    "Ask your school's IT admin to have the school registered.",
    "Only from the server of a registered school.",
)
