"""Classes: creating them, joining them, their roster and settings (SPEC §3 "Classes")."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Annotated

from storage.models import ClassRole, RoomKind, server_of

from . import provision
from .checks import FROM_A_SCHOOL
from .context import Context, GatewayError, Role, Where
from .converters import ClassCode, Choice, Text, TimeZone, UserId
from .errors import Conflict, NotAllowed, NotFound
from .registry import registry

log = logging.getLogger("ako.classes")


async def _new_code(ctx: Context, name: str) -> str:
    """A free code made up from the command's event: handled again after a crash, the same code
    (the rooms made before the crash name it)."""
    stem = re.sub(r"[^A-Za-z]", "", name).upper()[:4] or "CLASS"
    for attempt in range(50):
        code = f"{stem}{int(hashlib.sha256(f'{ctx.event_id}.{attempt}'.encode()).hexdigest(), 16) % 900 + 100}"
        if not await ctx.repos.classes.code_taken(code):
            return code
    raise Conflict("I could not find a free class code; choose one yourself.")


@registry.command(
    "class new",
    who=Role.STAFF,
    summary="Create a class: its space, class room and staff room. You become its teacher.",
    details='Example: `!class new "Physics 12" PHYS12`. Without a code, one is made up.',
)
async def class_new(
    ctx: Context,
    name: Annotated[str, Text("class name", max_len=100)],
    code: Annotated[str | None, ClassCode()] = None,
) -> None:
    if code is not None and await ctx.repos.classes.code_taken(code):
        raise Conflict(f"The code {code} is taken; choose another or leave it out.")
    code = code or await _new_code(ctx, name)
    teacher = ctx.caller.user_id
    klass = await ctx.repos.classes.create(name, code, ctx.settings.timezone, server_of(teacher), teacher, ctx.now)
    await provision.create_class_rooms(ctx, klass, teacher)
    ctx.reply(
        f"Created **{name}** with class code **{code}** (times in {klass.timezone}).\n"
        f"I've invited you to its space, class room and staff room. Learners join with "
        f"`{ctx.prefix}join {code}` in a direct message with me."
    )


@registry.command(
    "join",
    who=Role.ANYONE,
    checks=[FROM_A_SCHOOL],
    summary="Join a class by its code; best in a direct message with me.",
)
async def join(ctx: Context, code: Annotated[str, ClassCode()]) -> None:
    klass = await ctx.repos.classes.by_code(code)
    if klass is None or not klass.code_enabled:
        raise NotFound(f"No class takes the code {code}. Check it with your teacher.")
    if klass.archived:
        raise NotAllowed(f"{klass.name} is archived and takes no new learners.")
    added, _ = await provision.enrol_learner(ctx, klass, ctx.caller.user_id)
    if added:
        ctx.reply(
            f"Welcome to **{klass.name}**! I've invited you to the class room and to your own work room, "
            "where your submissions, feedback and grades stay private to you and your teachers."
        )
    else:
        ctx.reply(f"You are already in **{klass.name}**; I've sent the invitations again in case you missed them.")


@registry.command(
    "class code",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Show the class code, make a new one (reset) or stop joining by code (off).",
)
async def class_code(ctx: Context, action: Annotated[str | None, Choice("reset", "off")] = None) -> None:
    klass = ctx.klass
    if action == "reset":
        code = await _new_code(ctx, klass.name)
        await ctx.repos.classes.set_code(klass.id, code)
        await provision.write_class_record(ctx, await ctx.repos.classes.get(klass.id))
        ctx.reply(f"The new class code of {klass.name} is **{code}**; the old one no longer works.")
    elif action == "off":
        await ctx.repos.classes.set_code_enabled(klass.id, False)
        await provision.write_class_record(ctx, await ctx.repos.classes.get(klass.id))
        ctx.reply(f"Joining {klass.name} by code is off. `{ctx.prefix}class code reset` turns it on with a new code.")
    else:
        state = "" if klass.code_enabled else " (joining by code is off)"
        ctx.reply(f"The class code of {klass.name} is **{klass.code}**{state}.")


@registry.command(
    "class add",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Add learners to the class: each is invited and gets a work room.",
)
async def class_add(ctx: Context, users: Annotated[list[str], UserId()]) -> None:
    lines = []
    for user in users:
        try:
            added, _ = await provision.enrol_learner(ctx, ctx.klass, user)
        except GatewayError as e:  # one learner's server refusing must not undo (or orphan) the others
            log.warning("Could not add %s to %s: %s", user, ctx.klass.code, e)
            lines.append(f"{user} could not be invited (their server refused or did not answer); nothing was recorded for them. Try again later.")
            continue
        lines.append(f"{user} {'added' if added else 'was already in the class; invited again'}.")
    ctx.reply("\n".join(lines))


@registry.command(
    "class remove",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Remove a learner or teacher from the class; their records are kept.",
)
async def class_remove(ctx: Context, user: Annotated[str, UserId()]) -> None:
    klass = ctx.klass
    role = await ctx.repos.classes.role_of(klass.id, user)
    if role is None:
        raise NotFound(f"{user} is not in {klass.name}.")
    if role == ClassRole.TEACHER and len(await ctx.repos.classes.members(klass.id, ClassRole.TEACHER)) == 1:
        raise Conflict(f"{user} is the only teacher of {klass.name}; add another teacher first.")
    await ctx.repos.classes.remove_member(klass.id, user)
    await provision.remove_everywhere(
        ctx, klass, user, f"Removed from {klass.name} by {ctx.caller.user_id}", was_teacher=role == ClassRole.TEACHER
    )
    ctx.reply(f"{user} is no longer in {klass.name}. Their work and grades are kept.")


@registry.command(
    "class teacher add",
    who=Role.TEACHER,
    where=Where.CLASS,
    aliases=("teacher add",),
    summary="Make a staff member (of any registered school) a teacher of this class.",
)
async def class_teacher_add(ctx: Context, user: Annotated[str, UserId()]) -> None:
    klass = ctx.klass
    if not await ctx.repos.staff.is_staff(user):
        raise NotAllowed(f"{user} is not staff of a registered school; their school admin can name them with `{ctx.prefix}staff add`.")
    changed = await ctx.repos.classes.add_member(klass.id, user, ClassRole.TEACHER, ctx.caller.user_id, ctx.now)
    if not changed:
        ctx.reply(f"{user} already teaches {klass.name}.")
        return
    await provision.add_teacher_everywhere(ctx, klass, user)
    ctx.reply(f"{user} now teaches {klass.name}; I've invited them to the class's rooms and every work room.")


@registry.command(
    "roster", who=Role.TEACHER, where=Where.CLASS, summary="Who is in the class, grouped by school, with role.", reads_only=True
)
async def roster(ctx: Context) -> None:
    klass = ctx.klass
    members = await ctx.repos.classes.members(klass.id)
    schools = {s.server: s.name for s in await ctx.repos.schools.all()}
    by_server: dict[str, list] = {}
    for m in members:
        by_server.setdefault(m.server, []).append(m)
    lines = [f"**Roster of {klass.name}** — {len(members)} people"]
    for server in sorted(by_server, key=lambda s: (s not in schools, schools.get(s, s))):
        title = f"{schools[server]} ({server})" if server in schools else f"Guests from {server}"
        lines.append(f"\n**{title}**")
        for m in sorted(by_server[server], key=lambda m: (m.role != ClassRole.TEACHER, m.user_id)):
            lines.append(f"- {m.user_id} — {m.role}")
    ctx.reply("\n".join(lines))


@registry.command(
    "class info", who=Role.MEMBER, where=Where.CLASS, summary="The class's name, code, time zone and teachers.", reads_only=True
)
async def class_info(ctx: Context) -> None:
    klass = ctx.klass
    teachers = await ctx.repos.classes.members(klass.id, ClassRole.TEACHER)
    learners = await ctx.repos.classes.members(klass.id, ClassRole.LEARNER)
    state = " — archived, read-only" if klass.archived else ""
    code = klass.code if klass.code_enabled else f"{klass.code} (joining by code is off)"
    ctx.reply(
        f"**{klass.name}**{state}\n"
        f"- Code: {code}\n- Time zone: {klass.timezone}\n"
        f"- Teachers: {', '.join(t.user_id for t in teachers)}\n- Learners: {len(learners)}"
    )


@registry.command("classes", who=Role.ANYONE, summary="The classes you teach or learn in.", reads_only=True)
async def classes(ctx: Context) -> None:
    mine = await ctx.repos.classes.of_user(ctx.caller.user_id)
    if not mine:
        ctx.reply(f"You are in no class yet. Join one with `{ctx.prefix}join <code>`.")
        return
    lines = ["**Your classes**"]
    for klass, role in mine:
        archived = " (archived)" if klass.archived else ""
        lines.append(f"- **{klass.name}** — {klass.code}, {role}{archived}")
    ctx.reply("\n".join(lines))


@registry.command(
    "class timezone",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Set the time zone the class's dates are read and shown in.",
)
async def class_timezone(ctx: Context, zone: Annotated[str, TimeZone()]) -> None:
    await ctx.repos.classes.set_timezone(ctx.klass.id, zone)
    await provision.write_class_record(ctx, await ctx.repos.classes.get(ctx.klass.id))
    ctx.reply(f"Times in {ctx.klass.name} are now read and shown in {zone}.")


@registry.command(
    "class archive", who=Role.TEACHER, where=Where.CLASS, summary="Archive the class: read-only from now on; nothing is deleted."
)
async def class_archive(ctx: Context) -> None:
    klass = ctx.klass
    await ctx.repos.classes.archive(klass.id, ctx.now)
    room = await ctx.repos.rooms.of_class(klass.id, RoomKind.CLASS)
    if room:
        await ctx.matrix.make_read_only(room.room_id, provision.TEACHER_POWER)
    ctx.reply(f"{klass.name} is archived: its records are kept and can be read, but nothing more can be changed.")
