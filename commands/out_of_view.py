"""Commands private by content (`!submit`, `!grade`, `!return`) typed where others can read them.

Such a command carries a learner's work, a grade or feedback in its own text. Typed in the class
room (or any room that is not private to the caller), it is taken out of that room whatever becomes
of it — done, refused, a bad argument, a bug — with the caller's own message it replies to, and the
answer goes to a private room: the caller's work room (a learner), the class's staff room (a
teacher), else their direct message with Ako. The public room gets nothing, so nothing there repeats
the content. The dispatcher applies this from the declaration (``private=True``), not each handler.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from storage.models import ClassRole, Room, RoomKind, server_of

from .context import Context, GatewayError, Message, Redaction
from .direct import dm_for, is_dm_of, open_dm
from .provision import work_room_for

log = logging.getLogger("ako.commands")


_MENTIONED = re.compile(r"@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d{1,5})?")


async def exposed(ctx: Context, outcome: list[Message | Redaction] = (), typed: str = "") -> bool:
    """Whether the room the command was typed in may be read by people it is none of their business of.

    The staff room is private. A work room is private for its own learner's work: a command whose
    ``outcome`` went to another learner's work room, or (refused, with no outcome) whose ``typed``
    line names anyone but that learner, was typed in the wrong one. The caller's own direct message
    is private only while it has just the two of them in it; the class room, the space and any room
    Ako has no record of are not.
    """
    room = ctx.room
    if room is None:
        return True
    if room.kind == RoomKind.STAFF:
        return False
    if room.kind == RoomKind.WORK:
        for m in outcome:
            if isinstance(m, Message) and m.room_id != room.room_id:
                other = await ctx.repos.rooms.get(m.room_id)
                if other is not None and other.kind == RoomKind.WORK:
                    return True
        first_line = typed.split("\n", 1)[0]
        return ctx.caller.user_id != room.owner and any(u != room.owner for u in _MENTIONED.findall(first_line))
    if room.kind == RoomKind.DM:
        return not await is_dm_of(ctx.services, room, ctx.caller.user_id)
    return True


async def private_room(ctx: Context) -> tuple[str, bool] | None:
    """Where to answer the caller privately, and whether to ping them there (not in a direct message);
    None when there is nowhere.

    A learner without a work room gets one now, as when they hand in; someone outside the class
    (a visitor a teacher invited to the room by hand) gets their direct message, started if need be,
    unless Ako does not talk to their server."""
    user, klass = ctx.caller.user_id, ctx.klass
    role = ctx.caller.class_role if klass is not None else None
    if role == ClassRole.LEARNER:
        room = await ctx.repos.rooms.work_room(klass.id, user)
        if room is not None:
            return room.room_id, True
        try:
            return await work_room_for(ctx, klass, user), True
        except GatewayError as e:
            log.warning("Could not make a work room for %s in %s: %s", user, klass.code, e)
    if role == ClassRole.TEACHER:
        staff = await ctx.repos.rooms.of_class(klass.id, RoomKind.STAFF)
        if staff is not None:
            return staff.room_id, True
    dm = await dm_for(ctx.services, user)
    if dm is not None:
        return dm.room_id, False
    if await _may_write(ctx):
        try:
            room_id, _ = await open_dm(ctx, user)
            return room_id, False
        except GatewayError as e:
            log.warning("Could not open a direct message with %s: %s", user, e)
    return None


async def _may_write(ctx: Context) -> bool:
    """Whether Ako would talk to the caller in a direct message (as with their DM invites: README "Who may do what")."""
    user = ctx.caller.user_id
    if user in ctx.settings.operators or ctx.caller.is_staff:
        return True
    may = ctx.caller.school is not None or ctx.settings.allow_guests
    return may and not await ctx.repos.blocked.is_blocked(server_of(user))


def _place(room: Room | None, ctx: Context) -> str:
    if room is not None and room.kind == RoomKind.CLASS and ctx.klass is not None:
        return f"the class room of {ctx.klass.name}"
    if room is not None and room.kind == RoomKind.DM:
        return "a room with other people in it"
    if room is not None and room.kind == RoomKind.WORK:
        return f"the work room of {room.owner}"
    return "a room others can read"


async def take_out_of_view(ctx: Context, command: str, answers: list[Message | Redaction], refused: bool) -> list[Message | Redaction]:
    """What to send instead of ``answers`` for a private command typed in a room others read.

    ``answers`` are what the command would send (its handler's, or the refusal); every one meant for
    the public room goes to the private room instead, the first with a note saying why.
    """
    public = ctx.room_id
    reason = f"{ctx.prefix}{command} is answered privately: Ako moved it out of this room."
    out: list[Message | Redaction] = [Redaction(public, ctx.event_id, reason)]
    own_reply = None
    if ctx.reply_to:  # the caller's own message the command replied to (their work, a file) goes too
        try:
            replied = await ctx.matrix.get_event(public, ctx.reply_to)
        except GatewayError:
            replied = None
        if replied is not None and replied.get("sender") == ctx.caller.user_id:
            own_reply = ctx.reply_to
            out.append(Redaction(public, own_reply, reason))
    removed_by_us = {ctx.event_id, own_reply}
    kept = [a for a in answers if not (isinstance(a, Redaction) and a.room_id == public and a.event_id in removed_by_us)]
    moving = [a for a in kept if isinstance(a, Message) and a.room_id == public]

    target = await private_room(ctx)
    user = ctx.caller.user_id
    if target is None:  # nowhere private to answer: say only that it was removed, nothing of what it said
        log.warning("No private room to answer %s's %s%s in; answered without content in %s", user, ctx.prefix, command, public)
        note = f"I removed a message from {user}: `{ctx.prefix}{command}` is answered only in private, and I have no private room with them."
        if await _may_write(ctx):
            note += f" Start a direct message with me ({ctx.settings.bot_user_id}) and ask there."
        staying = [a for a in kept if not (isinstance(a, Message) and a.room_id == public)]
        return out + staying + [Message(public, note, reply_to=ctx.event_id, thread_root=ctx.thread_root)]
    room_id, ping = target
    note = f"You ran `{ctx.prefix}{command}` in {_place(ctx.room, ctx)}, so I removed it from there and answer here."
    if ctx.room is None or ctx.room.kind == RoomKind.DM:  # not a room Ako runs: it may lack the power to redact
        note += " If it is still there, please delete it."
    mentions = (user,) if ping else ()
    if not moving:
        kept.append(Message(public, ""))
    first = True
    for a in kept:  # in the order the command queued them; what was meant for the public room goes private
        if isinstance(a, Message) and a.room_id == public:
            text = f"{note}\n\n{'Nothing was recorded: ' if refused else ''}{a.markdown}".rstrip() if first else a.markdown
            first = False
            a = replace(a, room_id=room_id, markdown=text, mentions=tuple(dict.fromkeys((*a.mentions, *mentions))),
                        reply_to=None, thread_root=None)
        out.append(a)
    return out

