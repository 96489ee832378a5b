"""Forum topics: thread roots in the class room, and their replies counted (SPEC §3 "Forum threads").

A topic is recorded in the same transaction that queues its root message, under the outbox
transaction id ``ako.topic.<class>.<number>``. The root's event id becomes known when the outbox
sends it; a thread reply names that event id, and the outbox leads back to the topic. So the
bot never needs to see its own messages, and a reply is counted once, with the mark that its
event was processed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Annotated

from storage.models import ClassRole, RoomKind
from storage.forum import Topic, TopicActivity
from storage.outbox import fresh_txn_id

from . import when
from .context import Context, GatewayError, Role, Where
from .converters import Choice, Markdown, ShortId, Text
from .errors import Conflict, NotFound, id_ranges
from .registry import Body, Rest, registry, thread_replies
from .zones import shown_tz

log = logging.getLogger("ako.forum")

PINNED = "m.room.pinned_events"


class TopicId(ShortId):
    metavar = "topic"
    letter = "T"
    what = "a topic id"


def root_txn(class_id: int, number: int) -> str:
    """A transaction id for a topic's root that was never used before: topic numbers are reused
    once `!forget` deletes the last topic, and a homeserver silently drops a send whose id it has
    seen. A replay after a crash rolled this back with the topic, so a new one is harmless."""
    return fresh_txn_id(f"topic.{class_id}.{number}")


async def class_room_of(ctx: Context) -> str:
    room = await ctx.repos.rooms.of_class(ctx.klass.id, RoomKind.CLASS)
    if room is None:
        raise NotFound(f"{ctx.klass.name} has no class room to hold topics.")
    return room.room_id


class TopicRef(TopicId):
    """A topic of the context's class, by its id: the record."""

    async def convert(self, ctx: Context, text: str) -> Topic:
        return await find(ctx, self.parse(text, ctx))


async def find(ctx: Context, number: int) -> Topic:
    topic = await ctx.repos.topics.by_number(ctx.klass.id, number)
    if topic is None:
        found = [a.topic.number for a in await ctx.repos.topics.activity(ctx.klass.id, include_closed=True)]
        exist = f"its topics are {id_ranges('T', found)}" if found else "it has no topics yet"
        raise NotFound(f"{ctx.klass.name} has no topic T{number}; {exist}. `{ctx.prefix}topics` lists the open ones.")
    return topic


def root_text(topic_label: str, body: str, author: str, prefix: str) -> str:
    parts = [f"**{topic_label}**"]
    if body:
        parts += ["", body]
    parts += ["", f"_Topic started by {author}. Reply in this thread; `{prefix}topics` lists the open topics._"]
    return "\n".join(parts)


@registry.command(
    "topic",
    who=Role.MEMBER,
    where=Where.CLASS,
    summary="Start a forum topic: a thread in the class room that everyone can reply to.",
    details='Example: `!topic "Question about the lab"`, with the question as markdown on the following lines.',
)
async def topic_new(
    ctx: Context,
    title: Annotated[str, Text("title", max_len=200), Rest],
    body: Annotated[str | None, Markdown("text"), Body] = None,
) -> None:
    room_id = await class_room_of(ctx)
    number = await ctx.repos.topics.next_number(ctx.klass.id)
    txn = root_txn(ctx.klass.id, number)
    topic = await ctx.repos.topics.create(ctx.klass.id, number, title, body or "", ctx.caller.user_id, room_id, txn, ctx.now)
    ctx.send(room_id, root_text(topic.label, topic.body, topic.author, ctx.prefix), txn_key=txn)
    if ctx.room_id != room_id or ctx.thread_root:  # in the class room's timeline, the topic itself is the answer
        ctx.reply(f"Started **{topic.label}** in the class room of {ctx.klass.name}.")


async def under_a_topic(repos, room_id: str, thread_root: str | None) -> bool:
    return thread_root is not None and await repos.topics.by_root(room_id, thread_root) is not None


@registry.listener(wants=thread_replies, concerns=under_a_topic)
async def count_thread_reply(ctx: Context) -> None:
    """A thread reply under a topic's root counts once: who, when, and whether a teacher answered."""
    if ctx.thread_root is None or ctx.room is None or ctx.room.kind != RoomKind.CLASS:
        return
    topic = await ctx.repos.topics.by_root(ctx.room_id, ctx.thread_root)
    if topic is None:
        return
    await ctx.repos.topics.add_reply(
        topic.id, ctx.event_id, ctx.caller.user_id, ctx.caller.class_role == ClassRole.TEACHER, _sent_at(ctx)
    )


def _sent_at(ctx: Context) -> datetime:
    """When the reply was sent, as its server says (replies counted after downtime keep their
    time), never later than now."""
    ts = (ctx.event or {}).get("origin_server_ts")
    if isinstance(ts, int) and ts > 0:
        sent = datetime.fromtimestamp(ts / 1000, timezone.utc)
        return min(sent, ctx.now)
    return ctx.now


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def activity_line(a: TopicActivity, teachers: set[str], tz) -> str:
    t = a.topic
    pin = "📌 " if t.pinned else ""
    closed = " · closed" if t.closed else ""
    if a.replies:
        replies = f"{_count(a.replies, 'reply', 'replies')} from {_count(a.repliers, 'person', 'people')}"
    else:
        replies = "no replies yet"
    line = f"- {pin}**{t.label}** — {replies} · last activity {when.show(a.last_activity, tz)}{closed}"
    if not a.answered and t.author not in teachers and not t.closed:
        line += " · **unanswered**"
    return line


@registry.command(
    "topics",
    who=Role.MEMBER,
    where=Where.CLASS,
    summary="The class's open forum topics: replies, last activity, and which still wait for a teacher.",
    details="`!topics all` includes closed topics. A learner's topic is unanswered until a teacher replies in it.",
    reads_only=True,
)
async def topics(ctx: Context, which: Annotated[str | None, Choice("open", "all")] = None) -> None:
    found = await ctx.repos.topics.activity(ctx.klass.id, include_closed=which == "all")
    if not found:
        ctx.reply(f"{ctx.klass.name} has no open topics. Start one with `{ctx.prefix}topic \"<title>\"`.")
        return
    teachers = {m.user_id for m in await ctx.repos.classes.members(ctx.klass.id, ClassRole.TEACHER)}
    tz = await shown_tz(ctx)
    heading = "Topics" if which == "all" else "Open topics"
    lines = [f"**{heading} in {ctx.klass.name}**"]
    lines += [activity_line(a, teachers, tz) for a in found]
    ctx.reply("\n".join(lines))


@registry.command(
    "topic close",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Close a forum topic: it leaves the list, and its thread is told it is closed.",
)
async def topic_close(ctx: Context, t: Annotated[Topic, TopicRef()]) -> None:
    if t.closed:
        raise Conflict(f"{t.short_id} is already closed; `{ctx.prefix}topic reopen {t.short_id}` opens it again.")
    await ctx.repos.topics.set_closed(t.id, ctx.caller.user_id, ctx.now)
    root = await ctx.repos.topics.root_event(t)
    if root is not None:
        ctx.send(
            t.room_id,
            f"This topic is closed by {ctx.caller.user_id}. Start a new one with `{ctx.prefix}topic \"<title>\"`.",
            thread_root=root,
        )
    ctx.reply(f"Closed **{t.label}**.")


@registry.command(
    "topic reopen",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Open a closed forum topic again.",
)
async def topic_reopen(ctx: Context, t: Annotated[Topic, TopicRef()]) -> None:
    if not t.closed:
        raise Conflict(f"{t.short_id} is open.")
    await ctx.repos.topics.set_closed(t.id, None, None)
    root = await ctx.repos.topics.root_event(t)
    if root is not None:
        ctx.send(t.room_id, "This topic is open again.", thread_root=root)
    ctx.reply(f"Reopened **{t.label}**.")


@registry.command(
    "topic pin",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Pin a forum topic to the top of the list.",
)
async def topic_pin(ctx: Context, t: Annotated[Topic, TopicRef()]) -> None:
    if t.pinned:
        raise Conflict(f"{t.short_id} is already pinned; `{ctx.prefix}topic unpin {t.short_id}` unpins it.")
    await ctx.repos.topics.set_pinned(t.id, ctx.now)
    ctx.reply(f"Pinned **{t.label}**: it heads `{ctx.prefix}topics`" + await _mirror_pin(ctx, t, pin=True))


@registry.command(
    "topic unpin",
    who=Role.TEACHER,
    where=Where.CLASS,
    summary="Unpin a forum topic.",
)
async def topic_unpin(ctx: Context, t: Annotated[Topic, TopicRef()]) -> None:
    if not t.pinned:
        raise Conflict(f"{t.short_id} is not pinned.")
    await ctx.repos.topics.set_pinned(t.id, None)
    ctx.reply(f"Unpinned **{t.label}**" + await _mirror_pin(ctx, t, pin=False))


async def _mirror_pin(ctx: Context, t: Topic, *, pin: bool) -> str:
    """Pin or unpin the topic's root in the room's own pinned events, which clients show at the top;
    pins that others set there stay. Returns the end of the reply's sentence."""
    root = await ctx.repos.topics.root_event(t)
    if root is None:
        return ". Its first message is still on its way, so the room's pinned messages are unchanged."
    try:
        current = (await ctx.matrix.state(t.room_id, PINNED) or {}).get("pinned")
        current = [e for e in current if isinstance(e, str)] if isinstance(current, list) else []
        pinned = [e for e in current if e != root] + ([root] if pin else [])
        if pinned != current:
            await ctx.matrix.set_state(t.room_id, PINNED, "", {"pinned": pinned})
    except GatewayError as e:
        log.warning("Could not %s %s in %s: %s", "pin" if pin else "unpin", t.short_id, t.room_id, e)
        return ", but the room's pinned messages could not be changed just now."
    return f" and {'among' if pin else 'out of'} the room's pinned messages."
