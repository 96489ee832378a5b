"""The cluster's staffroom (SPEC §2): one space for the staff of every registered school.

The space holds a general room and subject rooms ("Physics", "Te reo Māori"), so a physics
teacher at one school finds the physics teachers at the others. The bot creates the space and
its general room on first need (the first `!staff add`, or the first `!staffroom`) and then
invites every member of staff; being named staff invites a person, being removed as staff
removes them from the space, the general room and every subject room.

Invitations are a convenience, the staff records are what count: a failed invite is logged and
told, never a reason to refuse `!staff add`.
"""

from __future__ import annotations

import logging
from typing import Annotated

from .context import Context, GatewayError, Role
from .converters import Text
from .provision import room_key
from .registry import registry

log = logging.getLogger("ako.staffroom")

SPACE = "staffroom space"
GENERAL = "staffroom"
STAFFROOM_NAME = "Ako staffroom"
ONLY_AKO = 50  # events_default of the space: only Ako (above every member) adds rooms to it


async def ensure_staffroom(ctx: Context) -> tuple[str, str, bool, list[str]]:
    """(space, general room, made now, staff who could not be invited). A staffroom made now
    invites every member of staff named so far."""
    repos = ctx.repos
    made = False
    space = await repos.cluster_rooms.get(SPACE)
    if space is None:
        space = await ctx.matrix.create_room(
            name=STAFFROOM_NAME,
            topic="The staff of every school in the cluster: a community of practice. Run by Ako.",
            space=True,
            events_default=ONLY_AKO,
            key=room_key(ctx, "staffroom space"),
        )
        await repos.cluster_rooms.put(SPACE, space, ctx.now)
        made = True
    general = await repos.cluster_rooms.get(GENERAL)
    if general is None:
        general = await ctx.matrix.create_room(
            name="Staffroom",
            topic=f"Staff of every school in the cluster. `{ctx.prefix}staffroom` lists the subject rooms.",
            parent=space,
            key=room_key(ctx, "staffroom"),
        )
        await ctx.matrix.add_child(space, general)
        await repos.cluster_rooms.put(GENERAL, general, ctx.now)
        made = True
    failed = []
    if made:
        for user, _ in await repos.staff.of_school():
            if not await _invite(ctx, user, (space, general)):
                failed.append(user)
    return space, general, made, failed


async def _invite(ctx: Context, user: str, rooms: tuple[str, ...]) -> bool:
    ok = True
    for room in rooms:
        try:
            await ctx.matrix.invite(room, user)
        except GatewayError as e:
            log.warning("Could not invite %s to staffroom room %s: %s", user, room, e)
            ok = False
    return ok


async def welcome(ctx: Context, users: list[str]) -> list[str]:
    """Invite newly named staff to the staffroom (space and general room); returns who could not be invited."""
    try:
        space, general, made, failed = await ensure_staffroom(ctx)
    except GatewayError as e:
        log.warning("Could not set up the staffroom: %s", e)
        return list(users)
    if made:  # everyone named so far, these users too, has just been invited
        return [u for u in users if u in failed]
    return [u for u in dict.fromkeys(users) if not await _invite(ctx, u, (space, general))]


async def farewell(ctx: Context, user: str) -> None:
    """Remove a former member of staff from the space, the general room and their subject rooms."""
    repos = ctx.repos
    rooms = [r for r in (await repos.cluster_rooms.get(SPACE), await repos.cluster_rooms.get(GENERAL)) if r]
    rooms += await repos.subjects.rooms_of(user)
    for room in rooms:
        await ctx.matrix.kick(room, user, "No longer staff of a school in the cluster")  # logs, never raises
    await repos.subjects.forget_member(user)


@registry.command(
    "staffroom",
    who=Role.STAFF,
    summary="The cluster's staffroom and its subject rooms; sends you its invitations again.",
    reads_only=True,
)
async def staffroom(ctx: Context) -> None:
    space, general, made, _ = await ensure_staffroom(ctx)
    if not made:
        await _invite(ctx, ctx.caller.user_id, (space, general))
    subjects = await ctx.repos.subjects.all()
    lines = [
        "**Ako staffroom** — the staff of every school in the cluster. "
        "I've sent you the invitations to its space and general room (if you are not in them yet)."
    ]
    if subjects:
        lines.append("Subject rooms:")
        for s in subjects:
            lines.append(f"- **{s.name}** — {s.members} staff")
        lines.append(f'Join one, or start a new one, with `{ctx.prefix}staffroom subject "<name>"`.')
    else:
        lines.append(f'No subject rooms yet: `{ctx.prefix}staffroom subject "Physics"` starts one.')
    ctx.reply("\n".join(lines))


@registry.command(
    "staffroom subject",
    who=Role.STAFF,
    summary="Join the staffroom's room for a subject, or start it: find its teachers at every school.",
    details='Example: `!staffroom subject "Physics"`. Names are matched ignoring case.',
)
async def staffroom_subject(ctx: Context, name: Annotated[str, Text("subject", max_len=60)]) -> None:
    space, _, _, _ = await ensure_staffroom(ctx)
    me = ctx.caller.user_id
    subject = await ctx.repos.subjects.by_name(name)
    if subject is None:
        room = await ctx.matrix.create_room(
            name=f"{name} — staffroom",
            topic=f"{name} teachers of every school in the cluster.",
            parent=space,
            invite=[me],
            key=room_key(ctx, f"subject room {name}"),
        )
        await ctx.matrix.add_child(space, room)
        subject = await ctx.repos.subjects.add(name, room, me, ctx.now)
        await ctx.repos.subjects.add_member(subject.id, me, ctx.now)
        ctx.reply(
            f"Started the **{name}** room in the staffroom and invited you. "
            f'Other staff join it with `{ctx.prefix}staffroom subject "{name}"`.'
        )
        return
    others = [u for u in await ctx.repos.subjects.members(subject.id) if u != me]
    added = await ctx.repos.subjects.add_member(subject.id, me, ctx.now)
    await _invite(ctx, me, (subject.room_id,))
    who = f" with {', '.join(others)}" if others else ""
    if added:
        ctx.reply(f"I've invited you to the **{subject.name}** room of the staffroom{who}.")
    else:
        ctx.reply(f"You are already in the **{subject.name}** room{who}; I've sent the invitation again.")
