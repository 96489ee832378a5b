"""The bot's one SQLite database: connection, numbered migrations, transactions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterable

import aiosqlite

from .record_journal import RecordJournal

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class DatabaseTooNew(RuntimeError):
    """The database was written by a newer Ako than this one."""


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration shipped with the code, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"Migration numbers must run 1, 2, 3… without gaps; found {versions}.")
    return found


class Database:
    """One connection, one writer.

    Every write goes through :meth:`transaction`, which holds a lock so that two
    tasks never interleave statements of different transactions on the shared
    connection, and opens ``BEGIN IMMEDIATE`` so SQLite takes the write lock up front.
    """

    def __init__(self, conn: aiosqlite.Connection, path: Path | str):
        self.conn = conn
        self.path = path
        self._lock = asyncio.Lock()
        self._in_tx: asyncio.Task | None = None
        self._after_commit: list[Callable[[], None]] = []
        self.journal = None  # storage.record_journal.RecordJournal once the schema has record_log

    @classmethod
    async def open(cls, path: Path | str) -> "Database":
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a submission acknowledged to a learner survives a power cut, not just a crash.
        await conn.execute("PRAGMA synchronous=FULL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA busy_timeout=5000")
        db = cls(conn, path)
        await db.migrate()
        db.journal = RecordJournal(db)
        return db

    async def close(self) -> None:
        await self.conn.close()

    async def schema_version(self) -> int:
        await self.conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
        )
        row = await (await self.conn.execute("SELECT version FROM schema_version")).fetchone()
        return row[0] if row else 0

    async def migrate(self) -> int:
        """Apply every migration newer than the database, each in one transaction with its version bump."""
        current = await self.schema_version()
        shipped = migrations()
        newest = shipped[-1][0] if shipped else 0
        if current > newest:
            raise DatabaseTooNew(
                f"The database {self.path} is at schema version {current}, but this Ako knows "
                f"only up to {newest}. Run a newer Ako, or restore a backup."
            )
        for version, name, sql in shipped:
            if version <= current:
                continue
            log.info("Applying database migration %s", name)
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(sql):
                    await self.conn.execute(statement)
                await self.conn.execute("DELETE FROM schema_version")
                await self.conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                await self.conn.execute("COMMIT")
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            current = version
        return current

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator["Database"]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception. Re-entrant within one task."""
        me = asyncio.current_task()
        if self._in_tx is not None and self._in_tx is me:
            yield self
            return
        async with self._lock:
            self._in_tx = me
            self._after_commit = []
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                if self.journal is not None:
                    await self.journal.begin()
                yield self
                if self.journal is not None:
                    # every change to a record goes into its room with the transaction that makes it
                    await self.journal.before_commit()
            except BaseException:
                await self.conn.execute("ROLLBACK")
                if self.journal is not None:
                    self.journal.rolled_back()
                raise
            else:
                try:
                    await self.conn.execute("COMMIT")
                except BaseException:
                    if self.journal is not None:
                        self.journal.rolled_back()
                    raise
                for callback in self._after_commit:
                    callback()
            finally:
                self._in_tx = None
                self._after_commit = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this task's transaction has committed; never if it is rolled back.
        For what is kept in memory beside the records (it follows them, never runs ahead)."""
        if self._in_tx is not asyncio.current_task():
            raise RuntimeError("after_commit outside a transaction")
        self._after_commit.append(callback)

    async def _wait_for_others(self) -> None:
        """A single statement outside a transaction still must not land inside another task's."""
        if self._lock.locked() and self._in_tx is not asyncio.current_task():
            async with self._lock:
                pass

    async def settled(self) -> None:
        """Return once no other task's transaction is under way: what memory keeps beside the
        records (see :meth:`after_commit`) is then as the records are."""
        await self._wait_for_others()

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Cursor:
        if self._in_tx is asyncio.current_task():
            return await self.conn.execute(sql, tuple(params))
        async with self.transaction():
            return await self.conn.execute(sql, tuple(params))

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        # one trip to SQLite's thread, not two (execute, then fetch): each trip is a thread hand-off,
        # ~0.2 ms on a loaded machine, and a command makes dozens of them (bench/handler_path.py)
        await self._wait_for_others()
        return list(await self.conn.execute_fetchall(sql, tuple(params)))

    async def fetchval(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]


class Repository:
    """One kind of record over the database: the repositories the handlers are given."""

    def __init__(self, db: Database):
        self.db = db


def _split_sql(sql: str) -> list[str]:
    """Split a migration file into statements; a trigger's BEGIN … END is one statement."""
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    statements, current = [], ""
    for piece in "\n".join(lines).split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n;"):
                statements.append(current.strip()[:-1].strip())
            current = ""
    if current.strip(" \n;"):
        statements.append(current.strip(" \n;"))
    return statements
