"""A learner's own data: `!export me` (everything Ako holds about them) and `!forget` (the right
to be forgotten, run by their school's admin or an operator).

`!forget` deletes the person's records (storage/privacy.py names every table and why), redacts
the bot's own events about them (the outbox records whom each message was about) and their
submissions in their work rooms, takes them out of every class room, and leaves their work rooms
and direct message. What federation keeps anyway is in the README ("What Ako cannot delete").
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Annotated

from storage.models import ClassRole, RoomKind, server_of

from .confirm import ask_to_confirm, confirmable
from .context import Context, Role
from .converters import UserId
from .errors import Conflict, NotAllowed
from .exports import send_file_to_dm
from .registry import registry
from .timetable import user_key

log = logging.getLogger("ako.privacy")

CANNOT_DELETE = (
    "Copies on other servers: every server in a room keeps its own copy of the room's events; a redaction "
    "asks them to remove the content, and servers that follow the spec do, but Ako cannot check or force it. "
    "Redaction keeps each event's skeleton (sender, time, type, room). Files stay in their server's media "
    "store: only the uploader's server can delete them. Ako's log file is not rewritten."
)


def _json_value(value):
    return value.isoformat() if isinstance(value, datetime) else value


@registry.command(
    "export me",
    who=Role.ANYONE,
    summary="Everything I hold about you, as a JSON file sent to our direct message.",
    details="Your classes, submissions (every version), grades and feedback, returns, extensions, reminders, "
    "settings, rooms, and which of my messages were about you.",
    reads_only=True,
)
async def export_me(ctx: Context) -> None:
    user = ctx.caller.user_id
    records = await ctx.repos.personal.collect(user)
    assignments = {}
    for table in ("submissions", "grades", "returns", "extensions"):
        for row in records.get(table, []):
            a = await ctx.repos.assignments.get(row["assignment_id"])
            if a is not None and a.id not in assignments:
                klass = await ctx.repos.classes.get(a.class_id)
                assignments[a.id] = {"class": klass.code if klass else None, "id": a.short_id, "title": a.title}
    classes = [{"code": k.code, "name": k.name, "role": role, "archived": k.archived} for k, role in await ctx.repos.classes.of_user(user)]
    own_rooms = [r["room_id"] for r in records.get("rooms", [])]
    about = await ctx.repos.outbox.about(user, own_rooms)
    data = {
        "user_id": user,
        "exported_at": ctx.now.isoformat(),
        "roles": {
            "operator": ctx.caller.is_operator,
            "school_admin_of": sorted(ctx.caller.admin_of),
            "staff": ctx.caller.is_staff,
        },
        "classes": classes,
        "assignments": {str(k): v for k, v in assignments.items()},
        "records": {table: [{k: _json_value(v) for k, v in row.items()} for row in rows] for table, rows in records.items()},
        "messages_about_you": [{"room_id": m.room_id, "event_id": m.event_id, "sent": m.sent} for m in about],
        "not_held_here": CANNOT_DELETE,
    }
    counts = {t: len(rows) for t, rows in records.items() if rows}
    summary = ", ".join(f"{n} {t.replace('_', ' ')}" for t, n in sorted(counts.items())) or "no records"
    text = f"Everything I hold about {user}: {summary}; {len(about)} of my messages were about you."
    body = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")
    filename = f"ako-data-{user.lstrip('@').split(':')[0]}.json"
    await send_file_to_dm(ctx, text, (body, filename, "application/json"))


async def _check_may_forget(ctx: Context, user: str) -> None:
    caller = ctx.caller
    server = server_of(user)
    if not (caller.is_operator or server in caller.admin_of):
        raise NotAllowed(f"Only a school admin of {server} (the learner's school) or an operator can forget {user}.")
    if user == ctx.settings.bot_user_id or user in ctx.settings.operators:
        raise Conflict(f"{user} runs this Ako; they are not forgotten by a command.")
    if await ctx.repos.schools.admin_of(user):
        raise Conflict(f"{user} is a school admin; an operator must remove them first.")
    if await ctx.repos.staff.is_staff(user):
        raise Conflict(f"{user} is staff; `{ctx.prefix}staff remove {user}` first.")
    teaching = [k.label for k, role in await ctx.repos.classes.of_user(user) if role == ClassRole.TEACHER]
    if teaching:
        raise Conflict(f"{user} teaches {', '.join(teaching)}; remove them from those classes first.")


@registry.command(
    "forget",
    who=Role.SCHOOL_ADMIN,
    summary="Forget a learner of your school: delete their records, redact my messages about them.",
    details=(
        "Asks you to `!confirm`. Deletes their class memberships, submissions, grades, feedback, returns, "
        "extensions, reminders, settings and rooms; redacts my messages about them and their submissions; "
        "removes them from their classes' rooms. Copies on other servers, event skeletons and uploaded files "
        "are beyond my reach (see the README)."
    ),
)
async def forget(ctx: Context, user: Annotated[str, UserId()]) -> None:
    await _check_may_forget(ctx, user)
    records = await ctx.repos.personal.collect(user)
    rooms = [r["room_id"] for r in records.get("rooms", [])]
    about = await ctx.repos.outbox.about(user, rooms)
    total = sum(len(rows) for rows in records.values())
    if total == 0 and not about:
        raise Conflict(f"I hold nothing about {user}.")
    await ask_to_confirm(
        ctx,
        "forget",
        {"user": user},
        f"This deletes all {total} of my records about {user} and redacts {sum(1 for m in about if m.event_id)} of my "
        "messages about them. It cannot be undone.",
    )


@confirmable("forget")
async def _confirmed_forget(ctx: Context, payload: dict) -> None:
    user = payload["user"]
    await _check_may_forget(ctx, user)
    repos = ctx.repos
    records = await repos.personal.collect(user)
    own_rooms = records.get("rooms", [])
    room_ids = [r["room_id"] for r in own_rooms]
    about = await repos.outbox.about(user, room_ids)
    # the reason stays in every room as part of the redaction: it must not name the person again
    reason = f"Right to be forgotten, at the request of {ctx.caller.user_id}."

    targets = [(m.room_id, m.event_id) for m in about if m.event_id]
    work_rooms = {r["class_id"]: r["room_id"] for r in own_rooms if r["kind"] == RoomKind.WORK}
    for sub in records.get("submissions", []):  # their own messages that were their work
        a = await repos.assignments.get(sub["assignment_id"])
        room = work_rooms.get(a.class_id) if a else None
        if room:
            targets += [(room, e) for e in (sub["source_event_id"], sub["reply_event_id"]) if e]
    # Redactions, kicks and leaves go through the outbox, committed with the deletions below: in
    # order in each room, once, and without holding the database while the homeserver rate-limits.
    redactions = list(dict.fromkeys(targets))
    for room_id, event_id in redactions:
        ctx.redact(room_id, event_id, reason)

    classes = [k for k, role in await repos.classes.of_user(user)]
    for klass in classes:
        for room in await repos.rooms.all_of_class(klass.id):
            if room.room_id not in room_ids:
                ctx.remove_from_room(room.room_id, user, reason)
    for room in own_rooms:  # their work rooms and our direct message: out of them, and out of the records
        ctx.remove_from_room(room["room_id"], user, reason)
        ctx.leave_room(room["room_id"])

    done = await repos.personal.forget(user, room_ids, ledger_prefixes=[f"digest.{user_key(user)}."])
    await repos.outbox.forget([m.id for m in about])
    log.info("Forgot %s at the request of %s: %s", user, ctx.caller.user_id, done.rows)
    deleted = ", ".join(f"{n} {t.replace('_', ' ')}" for t, n in sorted(done.rows.items()))
    lines = [
        f"Forgot {user}: deleted {done.total} records ({deleted or 'none'}).",
        f"Redacting {len(redactions)} events about them (in order, through my outbox; any I cannot redact is logged "
        "and listed by `ako check`).",
        f"Removed them from {len(classes)} class{'es' if len(classes) != 1 else ''}.",
        f"What I cannot delete: {CANNOT_DELETE}",
    ]
    ctx.reply("\n".join(lines))
