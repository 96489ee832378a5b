from datetime import datetime, timezone

import pytest

from .databases import open_db
from .fakes import FakeRooms, FrozenClock, Harness
from .outbox_fakes import OutboxHarness

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)  # Mon 30 Nov 2026, 16:00 in Auckland


@pytest.fixture
async def db(tmp_path):
    database = await open_db(tmp_path / "ako.db")
    yield database
    await database.close()


@pytest.fixture
async def harness(db):
    return Harness(db, FrozenClock(NOW), FakeRooms())


@pytest.fixture
async def h(db):
    """A harness whose replies also land in the real outbox, as the runtime queues them."""
    return OutboxHarness(db, FrozenClock(NOW), FakeRooms())


@pytest.fixture(scope="session", autouse=True)
def _security_figures():
    """At the end of the run, docs/security.md gets this suite's figures when AKO_SECURITY_DOC names it."""
    yield
    from tests import security_doc

    security_doc.record_unit_suite()
