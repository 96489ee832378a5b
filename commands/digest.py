"""Digests: new topics, replies and coming due dates, sent to a person's DM (SPEC §3 "Forum threads").

A digest goes out at 07:00 on the person's own clock (their ``!tz``, else the bot's default
zone): every day, or on Mondays. The scheduler sends it (see :mod:`commands.timetable`).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from storage.repositories import Repositories

from . import when
from .context import Context, Role
from .converters import Choice
from .direct import dm_for, is_dm_of, not_alone
from .errors import NotFound
from .recurrence import EVERY_DAY, Weekly
from .registry import Param, registry
from .zones import zone_of

DIGEST_AT = time(7, 0)
RULES = {"daily": Weekly(EVERY_DAY, DIGEST_AT), "weekly": Weekly((0,), DIGEST_AT)}
LOOK_AHEAD = {"daily": timedelta(days=7), "weekly": timedelta(days=14)}


def rule(kind: str) -> Weekly:
    return RULES[kind]


async def digest_zone(repos: Repositories, user_id: str, default: str) -> ZoneInfo:
    return await zone_of(repos, user_id, ZoneInfo(default))


async def build(repos: Repositories, user_id: str, kind: str, since: datetime, now: datetime, tz: ZoneInfo, prefix: str) -> str | None:
    """The digest's text, or None when there is nothing to tell."""
    sections = []
    until = now + LOOK_AHEAD[kind]
    for klass, role in await repos.classes.of_user(user_id):
        if klass.archived:
            continue
        lines = []
        for t in await repos.topics.created_between(klass.id, since, now):
            lines.append(f"- New topic **{t.label}** by {t.author}")
        for t, n in await repos.topics.replies_between(klass.id, since, now):
            lines.append(f"- {n} new {'reply' if n == 1 else 'replies'} in **{t.label}**{' (closed)' if t.closed else ''}")
        learners = len(await repos.classes.members(klass.id, "learner")) if role == "teacher" else 0
        for a in await repos.assignments.of_class(klass.id, published_only=True):
            if a.closed:
                continue
            if role == "teacher":
                due = a.due_at
                if not now < due <= until:
                    continue
                _, handed_in = await repos.submissions.count(a.id)
                status = f"{handed_in} of {learners} handed in"
            else:
                due = a.due_for(await repos.extensions.get(a.id, user_id))
                if not now < due <= until:
                    continue
                handed = await repos.submissions.latest(a.id, user_id) is not None
                status = "handed in" if handed else f"not handed in yet: `{prefix}submit {a.short_id}` in your work room"
            lines.append(f"- **{a.label}** due {when.show(due, tz)} — {status}")
        if lines:
            sections.append(f"**{klass.name}**\n" + "\n".join(lines))
    if not sections:
        return None
    head = f"**Your {kind} digest** — since {when.show(since, tz)}"
    return "\n\n".join([head, *sections, f"_`{prefix}digest off` stops these._"])


@registry.command(
    "digest",
    Param("how", Choice("daily", "weekly", "off"), optional=True),
    who=Role.ANYONE,
    summary="Get new topics, replies and coming due dates in a direct message, daily or weekly, or stop them.",
    details="Digests come at 07:00 your time (see `!tz`): daily, or weekly on Mondays. Without a word, shows your setting.",
    reads_only=True,
)
async def digest(ctx: Context, how: str | None) -> None:
    user = ctx.caller.user_id
    tz = await digest_zone(ctx.repos, user, ctx.settings.timezone)
    if how is None:
        current = (await ctx.repos.users.get(user)).digest
        if current == "off":
            ctx.reply(f"You get no digest. `{ctx.prefix}digest daily` or `{ctx.prefix}digest weekly` starts one.")
        else:
            nxt = rule(current).next_after(ctx.now, tz)
            ctx.reply(f"You get a {current} digest; the next comes {when.show(nxt, tz)}.")
        return
    if how == "off":
        await ctx.repos.users.set_digest(user, "off", ctx.now)
        ctx.services.timetable.changed()
        ctx.reply("Your digest is off.")
        return
    dm = ctx.room if await is_dm_of(ctx.services, ctx.room, user) else await dm_for(ctx.services, user)
    if dm is None:
        why = not_alone("digests") + " " if ctx.in_dm and ctx.room.owner == user else ""
        raise NotFound(
            f"{why}I send digests to our direct message, and we have none yet: start one with me "
            f"({ctx.settings.bot_user_id}) and ask there."
        )
    await ctx.repos.users.set_digest(user, how, ctx.now)
    ctx.services.timetable.changed()
    nxt = rule(how).next_after(ctx.now, tz)
    when_words = "every day" if how == "daily" else "every Monday"
    ctx.reply(
        f"You'll get a {how} digest {when_words} at {DIGEST_AT:%H:%M} ({tz.key}) in our direct message; "
        f"the first comes {when.show(nxt, tz)}."
    )
