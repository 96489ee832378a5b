"""Each person's own time zone (``!tz``), for times shown to them alone.

A class's times are read and shown in the class's zone (``!class timezone``), because the whole
class reads them. What is said to one person privately — their reminders, their digest, answers
in a direct message or their own work room — is shown in their zone when they have set one.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from storage.models import RoomKind
from storage.repositories import Repositories

from . import when
from .context import Context, Role
from .converters import Converter
from .errors import BadArgument
from .registry import registry

RESET_WORDS = ("reset", "off", "default")
RESET = "reset"


async def zone_of(repos: Repositories, user_id: str, fallback: ZoneInfo) -> ZoneInfo:
    """The user's own zone, or ``fallback`` when they have not set one."""
    name = await repos.users.timezone(user_id)
    return ZoneInfo(name) if name else fallback


def is_private(ctx: Context) -> bool:
    """Whether the caller is answered where only they (and, in a work room, their teachers) read it."""
    room = ctx.room
    if room is None:
        return False
    return (room.kind == RoomKind.DM and room.owner in (None, ctx.caller.user_id)) or (
        room.kind == RoomKind.WORK and room.owner == ctx.caller.user_id
    )


async def shown_tz(ctx: Context) -> ZoneInfo:
    """The zone for times in this answer: the caller's own in private, else the class's."""
    if is_private(ctx):
        return await zone_of(ctx.repos, ctx.caller.user_id, ctx.tz)
    return ctx.tz


class ZoneOrReset(Converter):
    """An IANA zone name, or ``reset``."""

    metavar = "Area/City"

    def parse(self, text, env) -> str:
        if text.strip().lower() in RESET_WORDS:
            return RESET
        try:
            return when.zone(text.strip()).key
        except ValueError as e:
            raise BadArgument(str(e)) from None


@registry.command(
    "tz",
    who=Role.ANYONE,
    summary="Set the time zone your own times are shown in (reminders, digests, private answers), or show it.",
    details="Example: `!tz Europe/London`. `!tz reset` goes back to each class's zone. Class times stay in the class's zone.",
    reads_only=True,
)
async def tz(ctx: Context, zone: Annotated[str | None, ZoneOrReset()] = None) -> None:
    user = ctx.caller.user_id
    if zone is None:
        current = await ctx.repos.users.timezone(user)
        if current:
            ctx.reply(f"Your times are shown in {current}: it is now {when.show(ctx.now, ZoneInfo(current))}.")
        else:
            ctx.reply(
                f"You have not set a time zone, so I show your times in each class's zone (by default "
                f"{ctx.settings.timezone}). Set yours with `{ctx.prefix}tz <Area/City>`, like `{ctx.prefix}tz Europe/London`."
            )
        return
    await ctx.repos.users.set_timezone(user, None if zone == RESET else zone, ctx.now)
    ctx.services.timetable.changed()  # digests follow the user's zone
    if zone == RESET:
        ctx.reply(f"Your own time zone is cleared; I show your times in each class's zone (by default {ctx.settings.timezone}).")
    else:
        ctx.reply(f"Your times are now shown in {zone}: it is now {when.show(ctx.now, ZoneInfo(zone))}.")
