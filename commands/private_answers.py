"""Where answers about one learner's work may be shown (SPEC §4 "Privacy"): a learner's own in their
work room or their direct message; every learner's in the staff room or a direct message."""

from __future__ import annotations

from storage.models import RoomKind

from .context import Context
from .direct import is_dm_of, not_alone
from .errors import NotAllowed
from .finding import work_room_of


async def own_dm(ctx: Context) -> bool:
    """The caller's own direct message with the bot, with nobody else in it now (commands/direct.py).
    Someone else's "direct message" is a room its owner invited the bot to, and may share with
    anyone: no one else's private answers go there."""
    return await is_dm_of(ctx.services, ctx.room, ctx.caller.user_id)


def _shared_dm(ctx: Context) -> bool:
    """Asked in a room recorded as the caller's DM that has other people in it (own_dm said no)."""
    room = ctx.room
    return room is not None and room.kind == RoomKind.DM and room.owner == ctx.caller.user_id


async def reply_privately(ctx: Context, text: str) -> None:
    """A learner's own work or grades: shown in their work room or our DM, else sent to their work room."""
    room = ctx.room
    if room is not None and ((room.kind == RoomKind.WORK and room.owner == ctx.caller.user_id) or await own_dm(ctx)):
        ctx.reply(text)
        return
    ctx.send(await work_room_of(ctx, ctx.caller.user_id), text)
    why = not_alone("your work and grades") + " " if _shared_dm(ctx) else ""
    ctx.reply(f"{why}I've put the answer in your work room, where only you and your teachers can see it.")


async def reply_to_teachers(ctx: Context, text: str) -> None:
    """Views of every learner's work: shown in the staff room or a DM, else sent to the staff room."""
    room = ctx.room
    if room is not None and (room.kind == RoomKind.STAFF or await own_dm(ctx)):
        ctx.reply(text)
        return
    why = not_alone("grades") + " " if _shared_dm(ctx) else ""
    staff = await ctx.repos.rooms.of_class(ctx.klass.id, RoomKind.STAFF)
    if staff is None:
        raise NotAllowed(
            f"{why}That list shows learners' work, so I only give it in the staff room or a direct message with me: "
            f"try `{ctx.prefix}{ctx.command_name} {ctx.klass.code} …` there."
        )
    ctx.send(staff.room_id, text)
    ctx.reply(f"{why}I've put it in the staff room of {ctx.klass.name}, where learners can't see it.")
