"""Schools of the cluster and their staff (SPEC §3 "Schools and staff")."""

from __future__ import annotations

from typing import Annotated

from storage.models import server_of

from . import staffroom
from .context import Context, Role
from .converters import ServerName, Text, UserId
from .errors import NotAllowed, NotFound
from .registry import Rest, registry


@registry.command(
    "school add",
    who=Role.OPERATOR,
    summary="Register a school by its homeserver, or rename it.",
    details='Example: `!school add school-b.example "Kura B"`',
)
async def school_add(
    ctx: Context,
    server: Annotated[str, ServerName()],
    name: Annotated[str, Text("school name", max_len=100), Rest],
) -> None:
    new = await ctx.repos.schools.add(server, name, ctx.caller.user_id, ctx.now)
    verb = "Registered" if new else "Renamed"
    ctx.reply(f"{verb} **{name}** ({server}). Name its admin with `{ctx.prefix}school admin {server} @user:{server}`.")


@registry.command(
    "school admin",
    who=Role.OPERATOR,
    summary="Name a school admin; the account must be on that school's server.",
)
async def school_admin(ctx: Context, server: Annotated[str, ServerName()], user: Annotated[str, UserId()]) -> None:
    school = await ctx.repos.schools.get(server)
    if school is None:
        raise NotFound(f"{server} is not a registered school. Register it first: `{ctx.prefix}school add {server} \"<name>\"`.")
    if server_of(user) != server:
        raise NotAllowed(f"{user} is not on {server}; a school's admin must have an account on that school's server.")
    added = await ctx.repos.schools.add_admin(server, user, ctx.caller.user_id, ctx.now)
    ctx.reply(f"{user} is {'now' if added else 'already'} a school admin of **{school.name}**.")


@registry.command("schools", who=Role.ANYONE, summary="The cluster's schools and their admins.", reads_only=True)
async def schools(ctx: Context) -> None:
    found = await ctx.repos.schools.all()
    if not found:
        ctx.reply(f"No schools are registered yet. An operator adds one with `{ctx.prefix}school add <server> \"<name>\"`.")
        return
    lines = ["**Schools**"]
    for s in found:
        admins = ", ".join(s.admins) if s.admins else "no admin yet"
        lines.append(f"- **{s.name}** ({s.server}) — admins: {admins}")
    ctx.reply("\n".join(lines))


def _servers_for_staff(ctx: Context) -> frozenset[str] | None:
    """The servers whose staff the caller may name; None means any registered school (operators)."""
    return None if ctx.caller.is_operator else ctx.caller.admin_of


@registry.command(
    "staff add",
    who=Role.SCHOOL_ADMIN,
    summary="Name staff (teachers) of your school; their accounts must be on your school's server.",
)
async def staff_add(ctx: Context, users: Annotated[list[str], UserId()]) -> None:
    allowed = _servers_for_staff(ctx)
    for user in users:
        server = server_of(user)
        if allowed is not None and server not in allowed:
            mine = ", ".join(sorted(allowed))
            raise NotAllowed(
                f"{user} is not on your school's server ({mine}); a school admin names staff on their own server only."
            )
        if await ctx.repos.schools.get(server) is None:
            raise NotFound(f"{server} is not a registered school.")
    lines = []
    for user in users:
        added = await ctx.repos.staff.add(user, server_of(user), ctx.caller.user_id, ctx.now)
        lines.append(f"{user} is {'now' if added else 'already'} staff.")
    not_invited = await staffroom.welcome(ctx, users)
    invited = [u for u in users if u not in not_invited]
    if invited:
        lines.append(f"I've invited {', '.join(invited)} to the cluster's staffroom (its space and general room).")
    if not_invited:
        lines.append(
            f"I could not invite {', '.join(not_invited)} to the staffroom just now; "
            f"`{ctx.prefix}staffroom` sends the invitation again."
        )
    ctx.reply("\n".join(lines))


@registry.command(
    "staff remove",
    who=Role.SCHOOL_ADMIN,
    summary="Remove a member of your school's staff.",
)
async def staff_remove(ctx: Context, user: Annotated[str, UserId()]) -> None:
    allowed = _servers_for_staff(ctx)
    if allowed is not None and server_of(user) not in allowed:
        raise NotAllowed(f"{user} is not on your school's server; a school admin removes staff of their own school only.")
    removed = await ctx.repos.staff.remove(user)
    if not removed:
        raise NotFound(f"{user} is not staff.")
    await staffroom.farewell(ctx, user)
    ctx.reply(
        f"{user} is no longer staff, and I've removed them from the staffroom. "
        "The classes they teach keep them as a teacher until removed there."
    )


@registry.command("staff", who=Role.ANYONE, summary="Staff of every registered school.", reads_only=True)
async def staff_list(ctx: Context) -> None:
    rows = await ctx.repos.staff.of_school()
    if not rows:
        ctx.reply(f"No staff yet. A school admin names them with `{ctx.prefix}staff add @user`.")
        return
    names = {s.server: s.name for s in await ctx.repos.schools.all()}
    lines = ["**Staff**"]
    current = None
    for user, server in rows:
        if server != current:
            current = server
            lines.append(f"**{names.get(server, server)}** ({server})")
        lines.append(f"- {user}")
    ctx.reply("\n".join(lines))
