import pytest

from storage.db import Database, DatabaseTooNew, migrations


def test_migrations_are_numbered_without_gaps():
    versions = [v for v, _, _ in migrations()]
    assert versions == list(range(1, len(versions) + 1))


async def test_fresh_database_reaches_newest_version(tmp_path):
    db = await Database.open(tmp_path / "a.db")
    assert await db.schema_version() == migrations()[-1][0]
    assert await db.fetchval("PRAGMA journal_mode") == "wal"
    assert await db.fetchval("PRAGMA foreign_keys") == 1
    await db.close()
    db = await Database.open(tmp_path / "a.db")  # reopening applies nothing twice
    assert await db.schema_version() == migrations()[-1][0]
    await db.close()


async def test_newer_database_is_refused(tmp_path):
    db = await Database.open(tmp_path / "a.db")
    await db.execute("UPDATE schema_version SET version = 999")
    await db.close()
    with pytest.raises(DatabaseTooNew, match="newer Ako|knows only up to"):
        await Database.open(tmp_path / "a.db")


async def test_transaction_rolls_back_on_error(tmp_path):
    db = await Database.open(tmp_path / "a.db")
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.execute("INSERT INTO sync_state (key, value) VALUES ('x', 'y')")
            raise RuntimeError
    assert await db.fetchval("SELECT value FROM sync_state WHERE key = 'x'") is None
    await db.close()
