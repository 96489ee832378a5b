"""The rooms a class uses (SPEC §2), created and kept in step with the class's records."""

from __future__ import annotations

from storage.models import Class, ClassRole, RoomKind, server_of

from .context import Context
from .errors import NotAllowed
from .server_acl import ACL, server_acl

TEACHER_POWER = 50
LEARNER_POWER = 0

# Namespaced state event types for Ako's records written into rooms.
STATE_CLASS = "nz.ako.class"


def room_key(ctx: Context, purpose: str) -> str | None:
    """Names a room a command makes before it is made: the command's event and the room's purpose.
    Handled again after a crash, the command gets the same rooms back (none twice)."""
    event_id = getattr(ctx, "event_id", None)
    return f"{event_id}.{purpose}" if event_id else None


async def create_class_rooms(ctx: Context, klass: Class, teacher: str) -> None:
    """Space, class room and staff room, with the bot (creator) at the top and the teacher at 50."""
    power = {teacher: TEACHER_POWER}
    space = await ctx.matrix.create_room(
        name=klass.name, topic=f"Class {klass.code} — run by Ako", space=True, invite=[teacher], power=power, events_default=TEACHER_POWER,
        key=room_key(ctx, "space"),
    )
    await ctx.repos.rooms.add(space, RoomKind.SPACE, klass.id, None, ctx.now)
    class_room = await ctx.matrix.create_room(
        name=klass.name,
        topic=class_room_topic(klass, ctx.prefix),
        parent=space,
        invite=[teacher],
        power=power,
        key=room_key(ctx, "class room"),
    )
    await ctx.repos.rooms.add(class_room, RoomKind.CLASS, klass.id, None, ctx.now)
    await ctx.matrix.add_child(space, class_room)
    staff_room = await ctx.matrix.create_room(
        name=f"{klass.name} — staff",
        topic=f"Teachers of {klass.name}: planning and marking.",
        invite=[teacher],
        power=power,
        history_visibility="joined",
        encrypted=ctx.settings.encrypt_work_rooms,
        key=room_key(ctx, "staff room"),
    )
    await ctx.repos.rooms.add(staff_room, RoomKind.STAFF, klass.id, None, ctx.now)
    await ctx.matrix.set_state(class_room, STATE_CLASS, "", class_record(klass))
    for room_id in (space, class_room, staff_room):
        await deny_blocked_servers(ctx, room_id)


def class_room_topic(klass: Class, prefix: str) -> str:
    joining = f"Class code {klass.code}." if klass.code_enabled else "Joining by code is off."
    return f"Class room of {klass.name}. {joining} Type {prefix}help for commands."


def class_record(klass: Class) -> dict:
    """The class as the ``nz.ako.class`` state event in its class room."""
    return {
        "name": klass.name, "code": klass.code, "code_enabled": klass.code_enabled, "timezone": klass.timezone,
        "server": klass.server,
    }


async def write_class_record(ctx: Context, klass: Class) -> None:
    """After the code or the zone changed: the class room's topic and its ``nz.ako.class`` say what the records say."""
    room = await ctx.repos.rooms.of_class(klass.id, RoomKind.CLASS)
    if room is None:
        return
    await ctx.matrix.set_state(room.room_id, STATE_CLASS, "", class_record(klass))
    await ctx.matrix.set_state(room.room_id, "m.room.topic", "", {"topic": class_room_topic(klass, ctx.prefix)})


async def work_room_for(ctx: Context, klass: Class, learner: str) -> str:
    """The learner's work room in the class, created on first need: learner, teachers, bot; invite only."""
    existing = await ctx.repos.rooms.work_room(klass.id, learner)
    if existing:
        await ctx.matrix.invite(existing.room_id, learner)
        return existing.room_id
    teachers = [m.user_id for m in await ctx.repos.classes.members(klass.id, ClassRole.TEACHER)]
    room_id = await ctx.matrix.create_room(
        name=f"{klass.name} — work of {learner}",
        topic=f"Private work room in {klass.name}: submissions, feedback and grades. Only you, your teachers and Ako are here.",
        invite=[learner, *teachers],
        power={**{t: TEACHER_POWER for t in teachers}, learner: LEARNER_POWER},
        history_visibility="joined",
        join_rule="invite",
        encrypted=ctx.settings.encrypt_work_rooms,
        key=room_key(ctx, f"work room of {learner}"),
    )
    await ctx.repos.rooms.add(room_id, RoomKind.WORK, klass.id, learner, ctx.now)
    await deny_blocked_servers(ctx, room_id)
    return room_id


async def deny_blocked_servers(ctx: Context, room_id: str) -> None:
    """A new room of a class carries the cluster's server ACL, once any server is blocked."""
    acl = await server_acl(ctx)
    if acl.content["deny"]:
        await ctx.matrix.set_state(room_id, ACL, "", acl.content)


async def enrol_learner(ctx: Context, klass: Class, learner: str) -> tuple[bool, str]:
    """Invite the learner to the space and class room, make their work room, then record them:
    an invite that fails (GatewayError) leaves no record and no room behind."""
    await check_may_learn(ctx, learner)
    role = await ctx.repos.classes.role_of(klass.id, learner)
    if role == ClassRole.TEACHER:
        raise NotAllowed(f"{learner} teaches {klass.name}; a teacher cannot also be a learner in it.")
    for kind in (RoomKind.SPACE, RoomKind.CLASS):
        room = await ctx.repos.rooms.of_class(klass.id, kind)
        if room:
            await ctx.matrix.invite(room.room_id, learner)
    added = await ctx.repos.classes.add_member(klass.id, learner, ClassRole.LEARNER, ctx.caller.user_id, ctx.now)
    work = await work_room_for(ctx, klass, learner)
    return added, work


async def check_may_learn(ctx: Context, user: str) -> None:
    """Learners come from registered schools' servers, or any server when guests are allowed,
    never from a server an operator has blocked."""
    server = server_of(user)
    if await ctx.repos.blocked.is_blocked(server):
        raise NotAllowed(f"{server} is blocked in this cluster, so {user} cannot join classes.")
    if ctx.settings.allow_guests or await ctx.repos.schools.get(server) is not None:
        return
    raise NotAllowed(
        f"{server} is not the server of a school in this cluster, so {user} cannot join classes. "
        "Ask your school's IT admin to have the school registered."
    )


async def add_teacher_everywhere(ctx: Context, klass: Class, teacher: str) -> None:
    """Invite a teacher to every room of the class and give them the teacher's power level."""
    for room in await ctx.repos.rooms.all_of_class(klass.id):
        await ctx.matrix.invite(room.room_id, teacher)
        await ctx.matrix.set_power(room.room_id, teacher, TEACHER_POWER)


async def remove_everywhere(ctx: Context, klass: Class, user: str, reason: str, was_teacher: bool = False) -> None:
    """Out of every room of the class; a teacher's power level there goes back to a learner's first,
    so the rooms no longer give them what the records no longer do."""
    for room in await ctx.repos.rooms.all_of_class(klass.id):
        if was_teacher:
            await ctx.matrix.set_power(room.room_id, user, LEARNER_POWER)
        await ctx.matrix.kick(room.room_id, user, reason)


async def expected_power(ctx: Context, room_id: str) -> dict[str, int] | None:
    """The power levels Ako's records give users in one of its rooms; None for rooms it does not manage."""
    room = await ctx.repos.rooms.get(room_id)
    if room is None or room.class_id is None:
        return None
    levels = {m.user_id: TEACHER_POWER for m in await ctx.repos.classes.members(room.class_id, ClassRole.TEACHER)}
    return levels


async def restore_power(ctx: Context, room_id: str, current: dict) -> list[str]:
    """Put back the levels the records say, after someone else changed them. Returns who changed."""
    expected = await expected_power(ctx, room_id)
    if expected is None:
        return []
    users = dict(current.get("users", {}))
    bot = ctx.settings.bot_user_id
    changed = []
    for user, level in list(users.items()):
        if user == bot:
            continue
        if level != expected.get(user, LEARNER_POWER):
            changed.append(user)
            if user in expected:
                users[user] = expected[user]
            else:
                del users[user]
    for user, level in expected.items():
        if users.get(user) != level:
            users[user] = level
            if user not in changed:
                changed.append(user)
    if changed:
        await ctx.matrix.set_state(room_id, "m.room.power_levels", "", {**current, "users": users})
    return changed
