"""Rogue servers (SPEC §1: "a rogue or unregistered server gains nothing"): `!school block`.

A blocked server's users are removed from every class (records and rooms), its invites are
declined, its users' commands refused, and every room of every class carries an
``m.room.server_acl`` denying it (commands/server_acl.py), so that the servers of the room stop
accepting its events. A server the ACL cannot deny (it shares a host name with one that must stay)
is blocked by Ako alone, and the reply says so.
"""

from __future__ import annotations

import logging
from typing import Annotated

from storage.models import server_of

from .context import Context, GatewayError, Role
from .converters import ServerName
from .errors import Conflict, NotFound
from .registry import registry
from .server_acl import ACL, ServerAcl, protected_servers, server_acl

log = logging.getLogger("ako.blocking")


async def _apply_everywhere(ctx: Context, acl: ServerAcl) -> int:
    """Queue the ACL for every room of every class (the outbox writes it, in order with what was
    queued there before; a room that refuses it is logged and shown by `ako check`). How many rooms."""
    rooms = await ctx.repos.rooms.of_every_class()
    for room in rooms:
        ctx.set_room_state(room.room_id, ACL, acl.content)
    return len(rooms)


async def _remove_users_of(ctx: Context, server: str, reason: str) -> tuple[set[str], int]:
    """Take the server's users out of every class: their records, and every room of the class
    (also those a teacher invited by hand, whom the records never knew); leave their DMs with
    the bot. (users, classes they were in)."""
    by_class: dict[int, set[str]] = {}
    for room in await ctx.repos.rooms.of_every_class():
        if room.class_id not in by_class:  # first room of a class: its records
            members = [m.user_id for m in await ctx.repos.classes.members(room.class_id) if server_of(m.user_id) == server]
            for user in members:
                await ctx.repos.classes.remove_member(room.class_id, user)
            by_class[room.class_id] = set(members)
        try:
            present = {u for u in await ctx.matrix.members(room.room_id) if server_of(u) == server}
        except GatewayError as e:
            log.warning("Could not read the members of %s: %s", room.room_id, e)
            present = set()
        for user in sorted(present | by_class[room.class_id]):
            ctx.remove_from_room(room.room_id, user, reason)  # through the outbox, once the block is committed
        by_class[room.class_id] |= present
    for dm in await ctx.repos.rooms.dms_on(server):
        ctx.leave_room(dm.room_id)
        await ctx.repos.rooms.remove(dm.room_id)
    users = set().union(*by_class.values()) if by_class else set()
    return users, sum(1 for found in by_class.values() if found)


def _acl_note(acl: ServerAcl, server: str) -> str:
    if server in acl.not_denied:
        return (
            f"\n\nThe rooms' server ACL cannot deny {server}: Matrix compares ACLs by host name without the port, and "
            f"{acl.not_denied[server]}. Ako still declines its invites and refuses its users."
        )
    return ""


@registry.command(
    "school block",
    who=Role.OPERATOR,
    summary="Block a server: its users leave every class, its invites are declined, class rooms deny it by server ACL.",
    details="For a rogue server that is no school of the cluster. A registered school, an operator's server or mine cannot be blocked.",
)
async def school_block(ctx: Context, server: Annotated[str, ServerName()]) -> None:
    protected = await protected_servers(ctx)
    if server in protected:
        raise Conflict(f"{server} is {protected[server]}; it cannot be blocked.")
    new = await ctx.repos.blocked.add(server, ctx.caller.user_id, ctx.now)
    users, classes = await _remove_users_of(ctx, server, f"{server} is blocked in this cluster")
    acl = await server_acl(ctx)
    written = await _apply_everywhere(ctx, acl)
    lines = [f"{server} is {'now' if new else 'still'} blocked."]
    lines.append(
        f"Removed {len(users)} of its users from {classes} class{'es' if classes != 1 else ''}."
        if users else "None of its users were in a class."
    )
    denied = ", ".join(acl.content["deny"]) or "nothing"
    lines.append(f"Server ACL on its way to {written} room{'s' if written != 1 else ''} (deny: {denied}; allow: everyone else).")
    ctx.reply("\n".join(lines) + _acl_note(acl, server))


@registry.command(
    "school unblock",
    who=Role.OPERATOR,
    summary="Lift a block: the server is no longer denied; its users may be invited again.",
)
async def school_unblock(ctx: Context, server: Annotated[str, ServerName()]) -> None:
    if not await ctx.repos.blocked.remove(server):
        raise NotFound(f"{server} is not blocked. `{ctx.prefix}school blocked` lists the blocked servers.")
    acl = await server_acl(ctx)
    written = await _apply_everywhere(ctx, acl)
    denied = ", ".join(acl.content["deny"]) or "nothing"
    ctx.reply(f"{server} is no longer blocked. Server ACL on its way to {written} rooms (deny: {denied}).")


@registry.command("school blocked", who=Role.OPERATOR, summary="The servers blocked in this cluster.", reads_only=True)
async def school_blocked(ctx: Context) -> None:
    blocked = await ctx.repos.blocked.all()
    if not blocked:
        ctx.reply("No server is blocked.")
        return
    acl = await server_acl(ctx)
    lines = ["**Blocked servers**"]
    for server in blocked:
        note = " — by Ako only (shares its host name with a server that must stay)" if server in acl.not_denied else ""
        lines.append(f"- {server}{note}")
    ctx.reply("\n".join(lines))
