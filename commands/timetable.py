"""What falls due when, and doing each thing once (SPEC §3 "Reminders").

The database is the source of truth; the scheduler in ``bot/scheduler.py`` is only the clock.
It asks :func:`upcoming` for the moments to wake at, and at each wake-up (and at start) calls
:func:`run_due`, which does whatever has fallen due by now:

- ``publish.<assignment>``: an assignment set with ``publish <when>`` is posted;
- ``reminder.<id>.<time>``: a ``!remind`` / ``!remindme``;
- ``due.<assignment>.<offset>.<due time>[.<learner>]``: the automatic reminders before a due
  time — a general notice in the class room and a personal one to each learner who has not
  handed in; a learner with an extension gets theirs before their own due time;
- ``digest.<user>.<time>``: a person's digest.

Each of these is handled in one transaction that writes its row in the ledger (keyed as
above) and queues its messages with transaction ids made from the same key. A second run
finds the ledger row and does nothing; a crash before the commit leaves neither; after the
commit, the outbox resends with the same transaction id, which the homeserver deduplicates.
So a reminder is never sent twice.

After downtime (SPEC): a slot missed by less than ``reminder_grace`` is sent once, marked
late; an older one is dropped and logged; a recurring reminder or digest that missed several
times runs once, for the latest; an assignment's reminders at several offsets that were all
missed send only the nearest one.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Awaitable, Callable
from zoneinfo import ZoneInfo

from storage.coursework import Assignment
from storage.models import Class, ClassRole, RoomKind
from storage.reminders import Reminder

from . import digest, when
from .publishing import publish_due
from .context import Message, Services
from .direct import is_dm_of, private_room_for
from .recurrence import Weekly
from .zones import zone_of

log = logging.getLogger("ako.timetable")

Enqueue = Callable[[list[Message]], Awaitable[None]]

REMINDERS_PER_COMMIT = 50  # due reminders queued in one transaction
LATE_AFTER = timedelta(minutes=1)  # a send later than this after its time is marked late
LOOKBACK = timedelta(days=7)  # missed assignment reminders older than this are not even logged
HORIZON = timedelta(days=35)  # the clock is set this far ahead; the periodic sweep moves it on


@dataclass(frozen=True)
class Slot:
    """A moment to wake at; ``key`` is the scheduler's job id."""

    key: str
    at: datetime


@dataclass
class Tally:
    """What one run did, for logs and tests."""

    sent: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    published: int = 0


def compact(moment: datetime) -> str:
    """A moment as part of a key or transaction id: ``20261204T040000Z``."""
    return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def user_key(user_id: str) -> str:
    """A user in a key, without the characters of a Matrix id."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def verdict(at: datetime, now: datetime, grace: timedelta, started_at: datetime | None) -> str:
    """``sent`` (on time), ``late`` (missed by less than the grace period) or ``dropped``."""
    missed = now - at
    missed_while_down = started_at is not None and at < started_at
    if not missed_while_down and missed <= LATE_AFTER:
        return "sent"
    return "late" if missed < grace else "dropped"


def late_note(at: datetime, tz: ZoneInfo) -> str:
    return f"\n\n_Late: this was due {when.show(at, tz)}._"


async def run_due(services: Services, enqueue: Enqueue, now: datetime, started_at: datetime | None = None) -> Tally:
    """Do everything that has fallen due by ``now``. ``started_at``: when this process started;
    anything due before it was missed while the bot was down."""
    tally = Tally()
    steps = [lambda: _publish(services, enqueue, tally)]
    due = [r.id for r in await services.repos.reminders.due(now)]
    for at in range(0, len(due), REMINDERS_PER_COMMIT):
        steps.append(lambda ids=due[at : at + REMINDERS_PER_COMMIT]: _reminders(services, enqueue, ids, now, started_at, tally))
    steps.append(lambda: _assignment_reminders(services, enqueue, now, started_at, tally))
    for u in await services.repos.users.with_digest():
        steps.append(lambda u=u: _digest(services, enqueue, u.user_id, now, started_at, tally))
    for step in steps:
        try:
            await step()
        except Exception:  # one broken record must not stop the others; the next run tries again
            log.exception("A scheduled task failed; it will be tried again")
    return tally


async def upcoming(services: Services, now: datetime) -> list[Slot]:
    """Every future moment something is due (up to HORIZON ahead), with stable keys."""
    repos = services.repos
    end = now + HORIZON
    slots = [Slot(f"publish.{aid}", at) for aid, at in await repos.calendar.to_publish_after(now) if at <= end]
    for r in await repos.reminders.pending():
        if now < r.next_at <= end:
            slots.append(Slot(f"reminder.{r.id}.{compact(r.next_at)}", r.next_at))
    offsets = _offsets(services)
    if offsets:
        for s in await _due_slots(services, now, end + offsets[0]):
            if now < s.at <= end:
                slots.append(Slot(s.key, s.at))
    for u in await repos.users.with_digest():
        tz = await digest.digest_zone(repos, u.user_id, services.settings.timezone)
        after = max(now, u.digest_last_slot or now)
        at = digest.rule(u.digest).next_after(after, tz)
        if at <= end:
            slots.append(Slot(f"digest.{user_key(u.user_id)}.{compact(at)}", at))
    return sorted(slots, key=lambda s: (s.at, s.key))


# --- publishing


async def _publish(services: Services, enqueue: Enqueue, tally: Tally) -> None:
    if not await services.repos.assignments.due_for_publishing(services.clock.now()):
        return
    async with services.repos.db.transaction():
        messages = await publish_due(services)
        await enqueue(messages)
    tally.published += len(messages)


# --- !remind and !remindme


def rule_of(r: Reminder) -> Weekly | None:
    if r.weekdays is None or r.local_time is None:
        return None
    return Weekly(r.weekdays, time.fromisoformat(r.local_time))


async def reminder_zone(services: Services, r: Reminder) -> ZoneInfo:
    """A class's reminders follow the class's zone; a personal one is shown in its owner's zone."""
    if r.class_id is not None:
        klass = await services.repos.classes.get(r.class_id)
        return ZoneInfo(klass.timezone if klass else r.timezone)
    return await zone_of(services.repos, r.created_by, ZoneInfo(r.timezone))


def reminder_text(r: Reminder, prefix: str, rule: Weekly | None) -> str:
    text = f"⏰ **Reminder:** {r.text}" if r.class_id is not None else f"⏰ **You asked me to remind you:** {r.text}"
    if rule is not None:
        text += f"\n\n_{r.short_id}, {rule.describe()} · `{prefix}remind cancel {r.short_id}` stops it._"
    return text


async def _reminders(services: Services, enqueue: Enqueue, ids: list[int], now: datetime, started_at, tally: Tally) -> None:
    """Reminders due together, in one transaction: one commit, not one each (1,000 due in the same
    minute were queued in 6–8 s one by one; bench/RESULTS.md). If one fails, the batch is rolled
    back and each is done in its own transaction, so one broken record holds up no other."""
    if len(ids) > 1:
        counts = (len(tally.sent), len(tally.late), len(tally.dropped))
        try:
            async with services.repos.db.transaction():
                held: list[Message] = []

                async def hold(messages: list[Message]) -> None:
                    held.extend(messages)

                for reminder_id in ids:
                    await _reminder(services, hold, reminder_id, now, started_at, tally)
                await enqueue(together(held))
            return
        except Exception:
            log.warning("A batch of %d due reminders failed; doing them one at a time", len(ids), exc_info=True)
            for kept, done in zip(counts, (tally.sent, tally.late, tally.dropped)):
                del done[kept:]  # rolled back: not done
    for reminder_id in ids:
        try:
            await _reminder(services, enqueue, reminder_id, now, started_at, tally)
        except Exception:
            log.exception("Reminder %d failed; it will be tried again", reminder_id)


def together(messages: list[Message]) -> list[Message]:
    """Reminders due together for the same room go as one message, in the order they fell due: one
    notification, not ten in a row (README, "Reminders")."""
    by_room: dict[str, list[Message]] = {}
    for m in messages:
        by_room.setdefault(m.room_id, []).append(m)
    out = []
    for room_id, ms in by_room.items():
        if len(ms) == 1:
            out.append(ms[0])
            continue
        keys = "+".join(m.txn_key or "" for m in ms)
        out.append(Message(room_id, "\n\n".join(m.markdown for m in ms), txn_key=f"ako.reminders.{hashlib.sha256(keys.encode()).hexdigest()[:24]}"))
    return out


async def _reminder(services: Services, enqueue: Enqueue, reminder_id: int, now: datetime, started_at, tally: Tally) -> None:
    repos = services.repos
    async with repos.db.transaction():
        r = await repos.reminders.get(reminder_id)
        if r is None or r.next_at is None or r.next_at > now:
            return
        rule = rule_of(r)
        tz, klass = ZoneInfo(r.timezone), None
        if r.class_id is not None:
            klass = await repos.classes.get(r.class_id)
            tz = ZoneInfo(klass.timezone) if klass else tz
        slot, folded = r.next_at, 0
        if rule is not None:  # several missed times run once, for the latest
            latest, folded = rule.last_until(r.next_at, now, tz)
            slot = latest or slot
        outcome = verdict(slot, now, services.settings.reminder_grace, started_at)
        if r.class_id is not None and (klass is None or klass.archived):
            outcome = "dropped"
        room_id = r.room_id
        if r.class_id is None and outcome != "dropped":  # a personal one: to the owner's DM as it is now, just the two of them
            dm = await repos.rooms.get(r.room_id)
            room_id = dm.room_id if await is_dm_of(services, dm, r.created_by) else await private_room_for(services, r.created_by)
            if room_id is None:
                log.warning("Reminder %s of %s: no direct message with just them and Ako to send it to", r.short_id, r.created_by)
                outcome = "dropped"
        key = f"reminder.{r.id}.{compact(slot)}"
        if await repos.ledger.record(key, slot, outcome, now):
            if outcome == "dropped":
                log.warning("Dropped reminder %s due %s: missed by %s (grace %s)", r.short_id, slot.isoformat(), now - slot,
                            services.settings.reminder_grace)
            else:
                text = reminder_text(r, services.settings.prefix, rule)
                if outcome == "late":
                    text += late_note(slot, await reminder_zone(services, r))
                await enqueue([Message(room_id, text, txn_key=f"ako.{key}")])
            getattr(tally, outcome).append(key)
        if folded:
            log.info("Reminder %s missed %d times while the bot was down; it ran once", r.short_id, folded + 1)
        await repos.reminders.set_next(r.id, rule.next_after(max(slot, now), tz) if rule else None)


# --- automatic reminders before due times


@dataclass(frozen=True)
class DueSlot:
    key: str
    at: datetime
    assignment_id: int
    due: datetime  # the due time it reminds of
    offset: timedelta
    learner: str | None  # None: the class's due time; else this learner's extension


def _offsets(services: Services) -> list[timedelta]:
    """Largest first."""
    return sorted({o for o in services.settings.reminder_offsets if o > timedelta()}, reverse=True)


def _open(a: Assignment | None) -> bool:
    return a is not None and a.published and not a.closed and a.deleted_at is None


async def _due_slots(services: Services, start: datetime, end: datetime) -> list[DueSlot]:
    """Reminder slots of every open assignment with a due time (class or personal) in [start, end)."""
    repos = services.repos
    offsets = _offsets(services)
    found = {a.id: a for a in await repos.assignments.due_between(start, end)}
    for aid in await repos.calendar.extended_between(start, end):
        if aid not in found:
            a = await repos.assignments.get(aid)
            if _open(a):
                found[aid] = a
    classes: dict[int, Class | None] = {}
    slots = []
    for a in found.values():
        if a.class_id not in classes:
            classes[a.class_id] = await repos.classes.get(a.class_id)
        klass = classes[a.class_id]
        if klass is None or klass.archived:
            continue
        moments: list[tuple[datetime, str | None, datetime]] = [(a.due_at, None, a.published_at)]
        for learner, ext in (await repos.extensions.of_assignment(a.id)).items():
            moments.append((ext.due_at, learner, max(a.published_at, ext.granted_at)))
        for due, learner, owed_from in moments:
            if not start <= due < end:
                continue
            for offset in offsets:
                at = due - offset
                if at <= owed_from:  # before the work (or the extension) existed: never owed
                    continue
                key = f"due.{a.id}.{int(offset.total_seconds())}.{compact(due)}"
                if learner is not None:
                    key += f".{user_key(learner)}"
                slots.append(DueSlot(key, at, a.id, due, offset, learner))
    return slots


async def _assignment_reminders(services: Services, enqueue: Enqueue, now: datetime, started_at, tally: Tally) -> None:
    offsets = _offsets(services)
    if not offsets:
        return
    slots = [s for s in await _due_slots(services, now - LOOKBACK, now + offsets[0] + timedelta(seconds=1)) if s.at <= now]
    handled = await services.repos.ledger.handled([s.key for s in slots])
    latest: dict[tuple, DueSlot] = {}
    for s in slots:
        if s.key in handled:
            continue
        group = (s.assignment_id, s.due, s.learner)
        if group not in latest or s.at > latest[group].at:
            latest[group] = s
    for s in sorted((s for s in slots if s.key not in handled), key=lambda s: s.at):
        try:
            await _send_due_slot(services, enqueue, s, now, started_at, tally, nearest=latest[(s.assignment_id, s.due, s.learner)] is s)
        except Exception:
            log.exception("Reminder %s failed; it will be tried again", s.key)


def _left(due: datetime, now: datetime) -> str:
    minutes = round((due - now).total_seconds() / 60)
    return when.show_duration(timedelta(minutes=max(minutes, 1)))


async def _send_due_slot(services: Services, enqueue: Enqueue, s: DueSlot, now: datetime, started_at, tally: Tally, nearest: bool) -> None:
    repos, prefix = services.repos, services.settings.prefix
    async with repos.db.transaction():
        a = await repos.assignments.get(s.assignment_id)
        klass = await repos.classes.get(a.class_id) if a else None
        outcome = verdict(s.at, now, services.settings.reminder_grace, started_at)
        why = f"missed by {now - s.at} (grace {services.settings.reminder_grace})"
        if not nearest:
            outcome, why = "dropped", "a nearer reminder of the same due time replaces it"
        elif s.due <= now:
            outcome, why = "dropped", "the due time has passed"
        elif not _open(a) or klass is None or klass.archived:
            outcome, why = "dropped", "the assignment is closed, deleted or not posted"
        if not await repos.ledger.record(s.key, s.at, outcome, now):
            return
        getattr(tally, outcome).append(s.key)
        if outcome == "dropped":
            log.warning("Dropped the reminder %s of %s: %s", s.key, a.short_id if a else s.assignment_id, why)
            return
        class_tz = ZoneInfo(klass.timezone)
        late = outcome == "late"
        left = _left(s.due, now) if late else _left(s.due, s.at)
        messages: list[Message] = []
        extensions = await repos.extensions.of_assignment(a.id)
        handed_in = await repos.submissions.latest_of_assignment(a.id)
        learners = {m.user_id for m in await repos.classes.members(a.class_id, ClassRole.LEARNER)}
        if s.learner is None:
            room = await repos.rooms.of_class(klass.id, RoomKind.CLASS)
            if room is not None:
                text = (
                    f"⏰ **{a.label}** is due in {left} — {when.show(s.due, class_tz)}.\n"
                    f"Hand it in from your work room with `{prefix}submit {a.short_id} …`."
                )
                messages.append(Message(room.room_id, text + (late_note(s.at, class_tz) if late else ""), txn_key=f"ako.{s.key}.class"))
            audience = sorted(u for u in learners if u not in extensions and u not in handed_in)
        else:
            ext = extensions.get(s.learner)
            still = s.learner in learners and s.learner not in handed_in and ext is not None and ext.due_at == s.due
            audience = [s.learner] if still else []
        for learner in audience:
            room = await repos.rooms.work_room(klass.id, learner)
            if room is None:
                log.info("No work room for %s in %s: no personal reminder of %s", learner, klass.code, a.short_id)
                continue
            tz = await zone_of(repos, learner, class_tz)
            yours = " for you" if s.learner else ""
            text = (
                f"⏰ You haven't handed in **{a.label}** yet: it is due{yours} in {left} — {when.show(s.due, tz)}.\n"
                f"Hand it in here with `{prefix}submit {a.short_id} …`."
            )
            key = f"ako.{s.key}" if s.learner else f"ako.{s.key}.{user_key(learner)}"
            messages.append(Message(room.room_id, text + (late_note(s.at, tz) if late else ""), mentions=(learner,), txn_key=key))
        await enqueue(messages)


# --- digests


async def _digest(services: Services, enqueue: Enqueue, user_id: str, now: datetime, started_at, tally: Tally) -> None:
    repos = services.repos
    async with repos.db.transaction():
        u = await repos.users.get(user_id)
        if u.digest == "off":
            return
        tz = await digest.digest_zone(repos, user_id, services.settings.timezone)
        start = u.digest_last_slot or u.digest_since or now
        slot, count = digest.rule(u.digest).last_until(start, now, tz)
        if slot is None:
            return
        outcome = verdict(slot, now, services.settings.reminder_grace, started_at)
        text = dm = None
        if outcome != "dropped":
            since = u.digest_since or slot - digest.LOOK_AHEAD["daily"]
            text = await digest.build(repos, user_id, u.digest, since, now, tz, services.settings.prefix)
            if text is None:
                outcome = "empty"
            else:
                if outcome == "late":
                    text += late_note(slot, tz)
                # checked now: a "DM" others have joined since gets no digest; a new one is started instead
                dm = await private_room_for(services, user_id)
                if dm is None:
                    outcome = "dropped"
        key = f"digest.{user_key(user_id)}.{compact(slot)}"
        if await repos.ledger.record(key, slot, outcome, now):
            if outcome == "dropped":
                log.warning("Dropped the %s digest of %s due %s (missed by %s, or no DM)", u.digest, user_id, slot.isoformat(), now - slot)
            elif outcome != "empty":
                await enqueue([Message(dm, text, txn_key=f"ako.{key}")])
            if outcome != "empty":
                getattr(tally, outcome).append(key)
        # a dropped digest's news goes into the next one
        await repos.users.digest_done(user_id, slot, None if outcome == "dropped" else now)
