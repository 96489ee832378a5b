"""The unit tests' databases: opened without waiting for the disk, and a module's set-up made once
and copied for each test, so that none reads what another's commands left."""

from __future__ import annotations

import shutil
from contextlib import asynccontextmanager
from pathlib import Path

from storage.db import Database

from .fakes import OPERATOR, FakeRooms, FrozenClock, Harness


async def open_db(path: Path) -> Database:
    """The database at ``path``, migrated. The product opens it with synchronous=FULL (a power cut
    loses nothing); no unit test cuts the power, and waiting for the disk at every commit made them
    slow."""
    db = await Database.open(path)
    await db.conn.execute("PRAGMA synchronous=OFF")
    return db


@asynccontextmanager
async def preparing(path: Path, clock: FrozenClock, *, admin: str, staff: tuple[str, ...], dm: str = "!dm:a.test"):
    """Makes the database at ``path`` that a module's tests copy: yields its harness, with schools
    a.test and b.test registered by the operator in the operator's DM ``dm``, ``admin`` made
    a.test's admin and ``staff`` its staff; the rest of the set-up is the module's. Closed after."""
    db = await Database.open(path)
    try:
        h = Harness(db, clock, FakeRooms())
        await h.repos.rooms.add(dm, "dm", None, OPERATOR, clock.now())
        for line in ('!school add a.test "Kura A"', '!school add b.test "Kura B"', f"!school admin a.test {admin}"):
            assert "Only" not in await h.say(OPERATOR, dm, line)
        assert "Only" not in await h.say(admin, dm, f"!staff add {' '.join(staff)}")
        yield h
    finally:
        await db.close()


@asynccontextmanager
async def copy_of(template: Path, path: Path):
    """A throw-away copy at ``path`` of the prepared database ``template``, open; removed after."""
    shutil.copy(template, path)
    db = await open_db(path)
    try:
        yield db
    finally:
        await db.close()
        path.unlink(missing_ok=True)
