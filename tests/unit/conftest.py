from datetime import datetime, timezone

import pytest

from storage.db import Database

from .fakes import FakeRooms, FrozenClock, Harness

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)  # Mon 30 Nov 2026, 16:00 in Auckland


@pytest.fixture
async def db(tmp_path):
    database = await Database.open(tmp_path / "ako.db")
    # The product opens it with synchronous=FULL (a power cut loses nothing); no unit test cuts the
    # power, and waiting for the disk at every commit made them slow.
    await database.conn.execute("PRAGMA synchronous=OFF")
    yield database
    await database.close()


@pytest.fixture
async def harness(db):
    return Harness(db, FrozenClock(NOW), FakeRooms())


@pytest.fixture(scope="session", autouse=True)
def _security_figures():
    """At the end of the run, docs/security.md gets this suite's figures when AKO_SECURITY_DOC names it."""
    yield
    from tests import security_doc

    security_doc.record_unit_suite()
