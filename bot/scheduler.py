"""The clock of reminders, scheduled posts and digests: APScheduler over the database.

The database says what is due and when (:mod:`commands.timetable`); APScheduler only wakes
the bot at those moments. Its jobs live in memory, one per due moment, with the moment's
key as the job id, and are rebuilt from the database at start and after every change, so
nothing is pickled and a restart cannot double a job. A sweep every ``sweep`` seconds is the
safety net for changes nobody announced (and moves the horizon on).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from commands import timetable
from commands.context import Services
from commands.timetable import Enqueue, Slot

from .fault_points import crash_point

log = logging.getLogger("ako.scheduler")

SWEEP_JOB = "ako.sweep"


class Scheduler:
    """Implements the handlers' :class:`commands.context.Timetable` port."""

    def __init__(self, services: Services, enqueue: Enqueue, sweep: timedelta = timedelta(seconds=30)):
        self.services = services
        self.enqueue = enqueue
        self.sweep = sweep
        self.started_at: datetime | None = None
        self._aps = AsyncIOScheduler(
            timezone=timezone.utc,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._dirty = False
        self._task: asyncio.Task | None = None
        self._jobs_logged = False

    def start(self, paused: bool = False) -> None:
        """Start the clock (inside the running event loop) and catch up on what fell due while down."""
        self.started_at = self.services.clock.now()
        # APScheduler logs each job it adds and runs at INFO, one per reminder: keep its warnings only
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        self._aps.start(paused=paused)
        self._aps.add_job(self._wake, IntervalTrigger(seconds=self.sweep.total_seconds()), id=SWEEP_JOB, replace_existing=True)
        self.changed()

    def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)
        if self._task is not None:
            self._task.cancel()

    def changed(self) -> None:
        """The timetable changed (called inside a handler's transaction): re-read it soon.

        The re-read waits for the database lock, so it sees the handler's records once committed."""
        self._dirty = True
        if self._aps.running and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._refresh_while_dirty(), name="timetable")

    async def settle(self) -> None:
        """Wait until every announced change has been acted on (for tests and shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    def job_ids(self) -> list[str]:
        return sorted(job.id for job in self._aps.get_jobs())

    async def _wake(self) -> None:
        self.changed()
        await self.settle()

    async def _refresh_while_dirty(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self.refresh()
            except Exception:
                log.exception("Could not read the timetable; the sweep will try again")

    async def refresh(self) -> None:
        """Do what is due, then set the clock for what comes next."""
        now = self.services.clock.now()
        queued = 0

        async def enqueue(messages):  # inside the send's transaction: nothing of it is committed yet
            nonlocal queued
            crash_point("reminder-due")
            queued += len(messages)
            await self.enqueue(messages)

        tally = await timetable.run_due(self.services, enqueue, now, self.started_at)
        if queued:
            crash_point("reminder-committed")
        if tally.sent or tally.late or tally.dropped or tally.published:
            log.info(
                "Scheduled sends: %d on time, %d late, %d dropped, %d posted",
                len(tally.sent), len(tally.late), len(tally.dropped), tally.published,
            )
        self._set_jobs(await timetable.upcoming(self.services, self.services.clock.now()))

    def _set_jobs(self, slots: list[Slot]) -> None:
        wanted = {s.key: s for s in slots}
        for job in self._aps.get_jobs():
            if job.id != SWEEP_JOB and job.id not in wanted:
                job.remove()
        for key, slot in wanted.items():
            job = self._aps.get_job(key)
            if job is not None and job.next_run_time == slot.at:
                continue
            self._aps.add_job(self._wake, DateTrigger(run_date=slot.at), id=key, name=key, replace_existing=True)
        jobs = len(self._aps.get_jobs())
        if self._jobs_logged:
            log.debug("Timetable: %d moments ahead, %d jobs", len(wanted), jobs)
        else:  # once per start, for the admin (and the restart tests): rebuilt, not added to
            log.info("Timetable read: %d moment%s in the next %s, %d scheduler jobs", len(wanted), "" if len(wanted) == 1 else "s", _days(timetable.HORIZON), jobs)
            self._jobs_logged = True


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} days" if days != 1 else "day"
