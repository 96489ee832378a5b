"""Handing in work (SPEC §3 "Submissions"): every !submit is a new version, kept privately.

Work lives in the learner's work room. A !submit typed in the class room is removed from there
and recorded in the work room, so work never leaks to other learners.
"""

from __future__ import annotations

from typing import Annotated

from storage.coursework import Assignment, Submission, SubmittedFile
from storage.models import RoomKind

from . import when
from .context import Context, Media, Role, Where
from .converters import Markdown
from .errors import BadArgument, Conflict, NotAllowed, NotFound
from .finding import AssignmentRef, work_room_of
from .message_text import without_reply_fallback
from .private_answers import reply_privately
from .registry import Rest, registry
from .standing import standing

FILE_TYPES = ("m.file", "m.image", "m.video", "m.audio")
TEXT_TYPES = ("m.text", "m.emote", "m.notice")
MB = 1024 * 1024


def size_text(size: int) -> str:
    """``512 bytes``, ``3 KB``, ``1.5 MB``: under 1 KB in bytes, so a small file never reads as 0 or 1 KB."""
    if size >= MB:
        return f"{size / MB:.1f} MB"
    if size < 1024:
        return "1 byte" if size == 1 else f"{size} bytes"
    return f"{round(size / 1024)} KB"


def quoted(text: str) -> str:
    """A learner's text as a markdown quote: rendered, and set apart from what Ako says around it."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.splitlines())


@registry.command(
    "submit",
    who=Role.LEARNER,
    where=Where.OWN_WORK_ROOM_OR_CLASS_ROOM,
    summary="Hand in work: a new version made of your text and the message or file you reply to.",
    details=(
        "Run it in your work room: `!submit A1 my answer…`, or reply to your own message or file with `!submit A1`. "
        "Each !submit is a new version; the receipt says whether it is on time."
    ),
    private=True,  # typed in the class room, it is moved out of there and answered in the work room (dispatch)
)
async def submit(
    ctx: Context,
    a: Annotated[Assignment, AssignmentRef()],
    text: Annotated[str | None, Markdown("work"), Rest] = None,
) -> None:
    receipt, sub = await record(ctx, a, text, await fetch_replied(ctx))
    if ctx.room.kind == RoomKind.WORK:  # the caller's own (declared): elsewhere it is the class room
        ctx.reply(receipt)
        return
    # typed in the class room: the dispatcher takes it out of there and puts this answer in the work
    # room (out_of_view), which must then hold the work itself: the text quoted, the file sent again
    work = f"\n\nYour work:\n\n{quoted(sub.text)}" if sub.text else ""
    ctx.reply(f"{receipt}{work}")
    if sub.file is not None:
        f = sub.file
        caption = f"{f.name} — your work for {a.short_id}, version {sub.version}"
        ctx.send(await work_room_of(ctx, ctx.caller.user_id), caption, media=Media(f.url, f.name, f.mimetype, f.size))


async def fetch_replied(ctx: Context) -> dict | None:
    """The message the command replies to, as the server gives it; None when it is no reply."""
    if not ctx.reply_to:
        return None
    event = await ctx.matrix.get_event(ctx.room_id, ctx.reply_to)
    if event is None or event.get("type") != "m.room.message":
        raise NotFound(
            "I couldn't read the message you replied to, so nothing was recorded. Send it again and reply to it "
            f"with `{ctx.prefix}submit`."
        )
    return event


async def record(ctx: Context, a: Assignment, text: str | None, replied: dict | None) -> tuple[str, Submission]:
    """Record a new version of the caller's work; the receipt and the version. Refuses with nothing recorded."""
    learner = ctx.caller.user_id
    extension = await ctx.repos.extensions.get(a.id, learner)
    tz, now = ctx.tz, ctx.now
    if a.closed:
        raise Conflict(f"{a.short_id} is closed and takes no more work. Ask your teacher if you need more time.")
    cutoff = a.cutoff_for(extension)
    if cutoff is not None and now > cutoff:
        raise Conflict(
            f"The cutoff for {a.short_id} was {when.show(cutoff, tz)}; work can't be handed in after it, so nothing was "
            "recorded. Ask your teacher for an extension."
        )
    quoted, file = _work_in(ctx, replied)
    work = "\n\n".join(part for part in (quoted, text) if part)
    if not work and file is None:
        raise BadArgument(
            f"There is nothing to hand in: write your work after `{ctx.prefix}submit {a.short_id}`, "
            "or send it as a reply to your message or file."
        )
    late = a.late_by(now, extension)
    sub = await ctx.repos.submissions.add(
        a.id, learner, work, file, ctx.event_id, ctx.reply_to if replied else None, now,
        int(late.total_seconds()) if late else 0,
    )
    due = a.due_for(extension)
    timing = f"**late by {when.show_duration(late)}**" if late else "on time"
    parts = []
    if work:
        parts.append(f"your text ({len(work)} characters)")
    if file is not None:
        size = f", {size_text(file.size)}" if file.size is not None else ""
        parts.append(f"the file {file.name}{size}")
    return (
        f"Received **{a.label}**, version {sub.version}, at {when.show(now, tz)}: {timing} "
        f"(due {when.show(due, tz)}).\nRecorded: {' and '.join(parts)}."
    ), sub


def _work_in(ctx: Context, event: dict | None) -> tuple[str | None, SubmittedFile | None]:
    """The text or file of the replied-to message; (None, None) when there is none."""
    if event is None:
        return None, None
    if event.get("sender") != ctx.caller.user_id:
        raise NotAllowed("You replied to someone else's message; you can hand in only your own messages and files.")
    content = event.get("content") or {}
    kind = content.get("msgtype")
    if kind in FILE_TYPES:
        return None, _file_of(ctx, content)
    if kind in TEXT_TYPES:
        body = without_reply_fallback(content)
        return (body or None), None
    raise BadArgument(f"I can't record that kind of message ({kind or 'unknown'}); reply to a text message or a file.")


def _file_of(ctx: Context, content: dict) -> SubmittedFile:
    url = content.get("url") or (content.get("file") or {}).get("url")
    if not isinstance(url, str) or not url.startswith("mxc://"):
        raise BadArgument("That file has no Matrix media address, so I can't record it; upload it again and reply to it.")
    name = str(content.get("filename") or content.get("body") or "file")
    info = content.get("info") or {}
    size = info.get("size") if isinstance(info.get("size"), int) else None
    limit = ctx.settings.max_upload_mb
    if size is not None and size > limit * MB:
        raise Conflict(
            f"{name} is {size_text(size)}; files up to {limit} MB are accepted, so nothing was recorded. "
            "Make it smaller, or share a link to it as text."
        )
    mimetype = info.get("mimetype") if isinstance(info.get("mimetype"), str) else None
    return SubmittedFile(url, name, mimetype, size)


@registry.command(
    "unsubmit",
    who=Role.LEARNER,
    where=Where.CLASS,
    summary="Withdraw the work you handed in, before the due time.",
)
async def unsubmit(ctx: Context, a: Annotated[Assignment, AssignmentRef()]) -> None:
    learner = ctx.caller.user_id
    extension = await ctx.repos.extensions.get(a.id, learner)
    due = a.due_for(extension)
    if ctx.now >= due:
        raise Conflict(f"{a.short_id} was due {when.show(due, ctx.tz)}; work can be withdrawn only before the due time.")
    withdrawn = await ctx.repos.submissions.withdraw(a.id, learner, ctx.now)
    if not withdrawn:
        raise NotFound(f"You have no work handed in for {a.short_id}.")
    await reply_privately(
        ctx,
        f"Withdrew your work on **{a.label}**; it shows as not submitted. Hand in again with "
        f"`{ctx.prefix}submit {a.short_id}` before {when.show(due, ctx.tz)}.",
    )


@registry.command(
    "mywork",
    who=Role.LEARNER,
    where=Where.CLASS,
    summary="Your status on every assignment: handed in, on time or late, graded.",
    reads_only=True,
)
async def mywork(ctx: Context) -> None:
    found = await ctx.repos.assignments.of_class(ctx.klass.id, published_only=True)
    if not found:
        ctx.reply(f"{ctx.klass.name} has no assignments yet.")
        return
    lines = [f"**Your work in {ctx.klass.name}**"]
    for a in found:
        mine = await standing(ctx.repos, a, ctx.caller.user_id)
        lines.append(f"- **{a.label}** · due {when.show(mine.due, ctx.tz)} — {mine.text(ctx.tz, ctx.now, with_extension=False)}")
    await reply_privately(ctx, "\n".join(lines))
