"""Rogue servers (SPEC §1: "a rogue or unregistered server gains nothing"): `!school block`.

A blocked server's users are removed from every class (records and rooms), its invites are
declined, its users' commands refused, and every room of every class carries an
``m.room.server_acl`` denying it, so that the servers of the room stop accepting its events.

Matrix matches ACL entries against the host name *without the port*, so a blocked server that
shares its host name with the bot's server, a registered school or an operator's server cannot be
denied by ACL without denying them too: it is then blocked by Ako alone, and the reply says so.
The allow list is always ``["*"]``: an empty one would shut every server out, the bot's included.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass

from storage.models import server_of

from .context import Context, GatewayError, Role
from .converters import ServerName
from .errors import Conflict, NotFound
from .registry import Param, registry

log = logging.getLogger("ako.blocking")

ACL = "m.room.server_acl"


def host_of(server: str) -> str:
    """The host name of a server name, as server ACLs compare it: the port removed."""
    if server.startswith("["):  # IPv6 literal: [::1]:8448
        return server[: server.index("]") + 1] if "]" in server else server
    return re.sub(r":\d+$", "", server).lower()


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _glob(entry: str, host: str) -> bool:
    """An ACL entry matches a host: ``*`` any characters, ``?`` one, everything else literally."""
    pattern = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in entry)
    return re.fullmatch(pattern, host, re.S | re.I) is not None


def acl_allows(content: dict, server: str) -> bool:
    """Whether a server may take part in a room with this ACL (the spec's matching rules)."""
    host = host_of(server)
    if not content.get("allow_ip_literals", True) and _is_ip_literal(host):
        return False
    if any(_glob(entry, host) for entry in content.get("deny", []) if isinstance(entry, str)):
        return False
    return any(_glob(entry, host) for entry in content.get("allow", []) if isinstance(entry, str))


@dataclass(frozen=True)
class ServerAcl:
    content: dict
    not_denied: dict[str, str]  # blocked server → why the ACL cannot deny it (shared host name)


async def protected_servers(ctx: Context) -> dict[str, str]:
    """Servers an ACL must never deny, each with what it is."""
    found = {server_of(ctx.settings.bot_user_id): "my own server"}
    for school in await ctx.repos.schools.all():
        found.setdefault(school.server, f"the server of {school.name}")
    for operator in ctx.settings.operators:
        found.setdefault(server_of(operator), f"the server of operator {operator}")
    return found


async def server_acl(ctx: Context) -> ServerAcl:
    """The ACL every class room carries: allow everyone, deny the blocked servers' hosts, except a
    host shared with a server that must stay (the ACL then cannot deny it; Ako still blocks it)."""
    protected = await protected_servers(ctx)
    by_host = {host_of(s): what for s, what in protected.items()}
    deny, not_denied = set(), {}
    for server in await ctx.repos.blocked.all():
        host = host_of(server)
        if host in by_host:
            not_denied[server] = f"its host name {host} is also that of {by_host[host]}"
        else:
            deny.add(host)
    content = {"allow": ["*"], "deny": sorted(deny), "allow_ip_literals": True}
    for server, what in protected.items():  # the rules above make this impossible; never write it if not
        if not acl_allows(content, server):
            raise RuntimeError(f"The server ACL {content} would deny {what} ({server})")
    return ServerAcl(content, not_denied)


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
            present = {u for u in await ctx.rooms.members(room.room_id) if server_of(u) == server}
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
    Param("server", ServerName()),
    who=Role.OPERATOR,
    summary="Block a server: its users leave every class, its invites are declined, class rooms deny it by server ACL.",
    details="For a rogue server that is no school of the cluster. A registered school, an operator's server or mine cannot be blocked.",
)
async def school_block(ctx: Context, server: str) -> None:
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
    Param("server", ServerName()),
    who=Role.OPERATOR,
    summary="Lift a block: the server is no longer denied; its users may be invited again.",
)
async def school_unblock(ctx: Context, server: str) -> None:
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
