"""Every record that matters is also in the rooms (issue 19, item 1): each change to a record table is
queued to exactly one room, in the transaction that makes it, and only where its readers may read it."""

import json
import sqlite3

import pytest

from commands.timetable import user_key
from storage import export, record_format, record_rooms, record_triggers
from storage.db import Database

from .fakes import LEARNER_A, LEARNER_B, OPERATOR, SHARED_DM, TEACHER_A, classroom
from .test_export_all import RECORD_TABLES, a_term
from .conftest import NOW


async def records_in_outbox(db) -> list[tuple[str, str, dict]]:
    """(room, event type, change) for every change any queued event carries, in queue order."""
    found = []
    for r in await db.fetchall("SELECT room_id, event_type, content FROM outbox ORDER BY id"):
        for change in record_format.decode(json.loads(r["content"])):
            found.append((r["room_id"], r["event_type"], change))
    return found


def rebuilt_from(changes: list[dict], path) -> dict:
    """A fresh database with the changes applied in seq order (as the format file says), exported."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = OFF")
    for c in record_format.join(changes):
        if c["op"] == "put":
            cols = list(c["row"])
            conn.execute(
                f'INSERT OR REPLACE INTO "{c["table"]}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})',
                [c["row"][k] for k in cols],
            )
        else:
            conn.execute(f'DELETE FROM "{c["table"]}" WHERE ' + " AND ".join(f"{k} = ?" for k in c["key"]), list(c["key"].values()))
    conn.commit()
    doc = export.records(conn)
    conn.close()
    return doc


async def test_every_record_table_has_triggers_covering_exactly_its_columns(db):
    conn = sqlite3.connect(db.path)
    try:
        tables = set(record_triggers.record_tables(conn))
        assert tables == RECORD_TABLES  # the hand-written list of records (test_export_all.py)
        installed = {name: sql for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")}
        for table in sorted(tables):
            expected = record_triggers.triggers(conn, table)  # as the table's columns are NOW
            for op, sql in zip(("insert", "update", "delete"), expected):
                name = f"record_{table}_{op}"
                assert name in installed, f"{table} has no {op} trigger: regenerate with python -m storage.record_triggers"
                assert installed[name] == sql, f"{name} does not cover {table}'s current columns: regenerate it"
        on_other = {t for (t,) in conn.execute("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'")} - tables
        assert not on_other, f"tables that are not records are journalled: {on_other}"
    finally:
        conn.close()


async def test_a_column_added_later_fails_the_coverage_check(db):
    """What a later migration that forgets the triggers looks like: the check above names it."""
    await db.execute("ALTER TABLE grades ADD COLUMN rubric TEXT")
    conn = sqlite3.connect(db.path)
    try:
        installed = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'record_grades_insert'").fetchone()[0]
        assert installed != record_triggers.triggers(conn, "grades")[0]
    finally:
        conn.close()


async def test_a_term_in_the_rooms_rebuilds_exactly_the_export(h, tmp_path):
    c = await a_term(h)
    await h.say(TEACHER_A, c.class_room, f"!class remove {LEARNER_B}")  # a delete, and the learner's rooms go
    await h.say(LEARNER_A, SHARED_DM, "!digest off")
    waiting = await h.db.fetchall("SELECT seq, table_name FROM record_log")
    assert [dict(w) for w in waiting] == []
    found = await records_in_outbox(h.db)
    seqs = [ch["seq"] for _, _, ch in found if "part" not in ch]
    assert len(seqs) == len(set(seqs)), "a change reached two rooms, or one room twice"
    assert {ch["table"] for _, _, ch in found} == RECORD_TABLES, "every kind of record reaches a room"
    assert {"put", "delete"} <= {ch["op"] for _, _, ch in found}
    empty = await Database.open(tmp_path / "rebuilt.db")  # the schema, no records
    await empty.close()
    doc = rebuilt_from([ch for _, _, ch in found], tmp_path / "rebuilt.db")
    mine = export.records(sqlite3.connect(h.db.path))
    for table in sorted(RECORD_TABLES):
        assert doc["tables"][table] == mine["tables"][table], table


async def test_nothing_private_goes_where_it_would_not_go(h):
    c = await a_term(h)
    found = await records_in_outbox(h.db)
    by_table: dict[str, set[str]] = {}
    for room, _, ch in found:
        by_table.setdefault(ch["table"], set()).add(room)
    # the class and its join code: only the class's staff room (teachers), never the class room
    assert by_table["classes"] == {c.staff_room}
    for room, _, ch in found:
        if room == c.class_room:
            assert "PHYS12" not in json.dumps(ch), f"the class code reached the class room in {ch}"
    # a learner's work: only their own work room
    for table in ("submissions", "grades", "returns", "extensions"):
        for room, _, ch in found:
            if ch["table"] == table:
                learner = ch["row"]["learner"]
                assert room == c.work[learner], f"{table} of {learner} went to {room}"
    # schools and staff: the staffroom; settings: the person's own room
    staffroom = await h.db.fetchval("SELECT room_id FROM cluster_rooms WHERE kind = 'staffroom'")
    assert by_table["schools"] == by_table["staff"] == by_table["school_admins"] == {staffroom}
    settings_rooms = {room for room, _, ch in found if ch["table"] == "user_settings"}
    assert settings_rooms == {c.work[LEARNER_A]}  # Ana has no direct message of her own here: her work room
    # records of a room are carried on messages Ako sends there anyway where one is queued
    assert any(t == "m.room.message" for _, t, _ in found) and any(t == "nz.ako.record" for _, t, _ in found)


async def test_records_about_a_learner_are_noted_so_forget_redacts_them(h):
    c = await classroom(h)
    ids = [r["id"] for r in await h.db.fetchall(
        "SELECT id FROM outbox WHERE room_id = ? AND content LIKE ?", (c.class_room, f"%{LEARNER_B}%"))]
    assert ids
    about = {m.id for m in await h.repos.outbox.about(LEARNER_B)}
    assert set(ids) <= about


async def test_a_rolled_back_transaction_sends_nothing(h):
    await classroom(h)
    before = await h.db.fetchval("SELECT COUNT(*) FROM outbox")
    with pytest.raises(RuntimeError):
        async with h.db.transaction():
            await h.db.execute("INSERT INTO blocked_servers (server, blocked_by, blocked_at) VALUES ('evil.test', ?, 'x')", (OPERATOR,))
            raise RuntimeError("crash before COMMIT")
    assert await h.db.fetchval("SELECT COUNT(*) FROM outbox") == before
    assert await h.db.fetchval("SELECT COUNT(*) FROM record_log") == 0
    await h.db.execute("INSERT INTO blocked_servers (server, blocked_by, blocked_at) VALUES ('evil.test', ?, 'x')", (OPERATOR,))
    assert await h.db.fetchval("SELECT COUNT(*) FROM outbox") == before + 1


async def test_a_change_whose_room_is_not_made_yet_waits_and_then_arrives(h):
    await classroom(h)
    async with h.db.transaction():
        await h.db.execute(
            "INSERT INTO classes (id, name, code, timezone, server, created_by, created_at) VALUES (99, 'Chem', 'CHEM1', 'UTC', 'a.test', ?, 'x')",
            (TEACHER_A,),
        )
        await h.db.execute("INSERT INTO class_members VALUES (99, ?, 'teacher', ?, 'x')", (TEACHER_A, TEACHER_A))
    assert {r["table_name"] for r in await h.db.fetchall("SELECT table_name FROM record_log")} == {"classes", "class_members"}
    await h.repos.rooms.add("!chem-staff:a.test", "staff", 99, None, NOW)
    await h.repos.rooms.add("!chem-class:a.test", "class", 99, None, NOW)
    assert await h.db.fetchval("SELECT COUNT(*) FROM record_log") == 0
    found = await records_in_outbox(h.db)
    assert [ch["table"] for room, _, ch in found if room == "!chem-staff:a.test"] == ["classes", "rooms"]
    assert [ch["table"] for room, _, ch in found if room == "!chem-class:a.test"] == ["class_members", "rooms"]


async def test_more_changes_in_one_commit_than_sqlite_takes_parameters_are_all_written(h):
    """An old database migrating journals every row it holds at once. SQLite builds take 999 or
    32,766 parameters a statement (or more): written with this build held to 999."""
    await classroom(h)
    await h.db.conn._execute(lambda: h.db.conn._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999))  # in its thread
    room = await h.db.fetchval("SELECT room_id FROM rooms WHERE kind = 'class'")
    async with h.db.transaction():
        for n in range(3_000):
            await h.db.execute("INSERT INTO processed_events (event_id, room_id, processed_at) VALUES (?, ?, 'x')", (f"$e{n}", room))
    assert await h.db.fetchval("SELECT COUNT(*) FROM record_log") == 0
    written = {ch["row"]["event_id"] for _, _, ch in await records_in_outbox(h.db) if ch["table"] == "processed_events"}
    assert {f"$e{n}" for n in range(3_000)} <= written


async def test_a_direct_message_gets_no_event_of_its_own_for_bookkeeping(h):
    """A two-person encrypted room rings for every event: records there wait for Ako's next message."""
    dm = "!ana-dm:a.test"
    await classroom(h)
    await h.repos.rooms.add(dm, "dm", None, LEARNER_A, NOW)
    await h.repos.users.digest_done(LEARNER_A, NOW, None)  # no row yet: nothing
    await h.say(LEARNER_A, dm, "!tz Europe/Berlin")
    queued = await h.db.fetchall("SELECT event_type, content FROM outbox WHERE room_id = ?", (dm,))
    assert [r["event_type"] for r in queued] == ["m.room.message"], "the reply carries the records"
    carried = record_format.decode(json.loads(queued[0]["content"]))
    assert {c["table"] for c in carried} >= {"rooms", "user_settings", "processed_events"}
    await h.repos.users.digest_done(LEARNER_A, NOW, NOW)  # the scheduler's bookkeeping, no message
    assert await h.db.fetchval("SELECT COUNT(*) FROM outbox WHERE room_id = ?", (dm,)) == 1
    assert await h.db.fetchval("SELECT COUNT(*) FROM record_log") == 1
    await h.say(LEARNER_A, dm, "!tz")
    assert await h.db.fetchval("SELECT COUNT(*) FROM record_log") == 0
    assert await h.db.fetchval("SELECT COUNT(*) FROM outbox WHERE room_id = ? AND event_type = 'nz.ako.record'", (dm,)) == 0


async def test_an_existing_database_puts_its_records_into_the_rooms_when_it_migrates(tmp_path, monkeypatch):
    from storage import db as storage_db

    shipped = storage_db.migrations()
    monkeypatch.setattr(storage_db, "migrations", lambda: [m for m in shipped if m[0] < 10])
    db = await Database.open(tmp_path / "old.db")
    await db.execute("INSERT INTO schools VALUES ('a.test', 'Kura A', ?, 'x')", (OPERATOR,))
    await db.execute("INSERT INTO cluster_rooms VALUES ('staffroom', '!staffroom:a.test', NULL, 'x')")
    await db.close()
    monkeypatch.setattr(storage_db, "migrations", lambda: shipped)
    db = await Database.open(tmp_path / "old.db")
    try:
        await db.execute("INSERT INTO sync_state VALUES ('x', 'y')")  # any commit drains the journal
        found = await records_in_outbox(db)
        assert [(room, ch["table"], ch["op"]) for room, _, ch in found] == [
            ("!staffroom:a.test", "cluster_rooms", "put"), ("!staffroom:a.test", "schools", "put")]
    finally:
        await db.close()


def test_ledger_keys_name_users_as_the_scheduler_does():
    assert record_rooms.user_key(LEARNER_A) == user_key(LEARNER_A)


def test_every_record_table_has_a_place():
    for table in RECORD_TABLES:
        row = {k: 1 for k in ("id", "class_id", "assignment_id", "topic_id", "programme_id", "use_id")}
        row.update(learner="@x:a", room_id="!r:a", user_id="@x:a", key="reminder.1.x")
        assert record_rooms.where(table, row)
    with pytest.raises(KeyError, match="No room is planned"):
        record_rooms.where("a_new_table", {})


async def test_a_private_command_typed_in_the_class_room_leaves_its_mark_with_the_answer(h):
    c = await classroom(h)
    await h.say(TEACHER_A, c.class_room, '!assign new "Essay" due 2026-12-11 17:00 points 10')
    before = await h.db.fetchval("SELECT MAX(id) FROM outbox")
    await h.run(LEARNER_A, c.class_room, "!submit A1 my private answer")
    event_id = f"$ev{h._n}"
    queued = await h.db.fetchall("SELECT room_id, event_type, content FROM outbox WHERE id > ?", (before,))
    assert {r["event_type"] for r in queued if r["room_id"] == c.class_room} == {"m.room.redaction"}, \
        "the class room gets nothing but the redaction"
    marks = [(r["room_id"], ch) for r in queued for ch in record_format.decode(json.loads(r["content"]))
             if ch["table"] == "processed_events"]
    assert [(room, ch["row"]["event_id"]) for room, ch in marks] == [(c.work[LEARNER_A], event_id)]


async def test_a_submission_and_a_grade_ride_on_the_messages_ako_sends_anyway(h):
    c = await classroom(h)
    await h.say(TEACHER_A, c.class_room, '!assign new "Essay" due 2026-12-11 17:00 points 10')
    for who, line, table in ((LEARNER_A, "!submit A1 my essay", "submissions"), (TEACHER_A, "!grade A1 8/10 Well argued.", "grades")):
        before = await h.db.fetchval("SELECT MAX(id) FROM outbox")
        await h.run(who, c.work[LEARNER_A], line)
        queued = await h.db.fetchall("SELECT event_type, content FROM outbox WHERE id > ? AND room_id = ?", (before, c.work[LEARNER_A]))
        assert [r["event_type"] for r in queued] == ["m.room.message"], f"{line}: no event of its own for the record"
        assert table in {ch["table"] for ch in record_format.decode(json.loads(queued[0]["content"]))}


async def test_in_a_direct_message_records_wait_for_a_message_about_no_one_else(h):
    dm = "!ana-dm:a.test"
    await classroom(h)
    await h.repos.rooms.add(dm, "dm", None, LEARNER_A, NOW)
    async with h.db.transaction():  # as a handler queues its replies
        await h.repos.outbox.put(dm, "m.room.message", {"msgtype": "m.notice", "body": f"About {LEARNER_B}."}, NOW)
    assert await h.db.fetchval("SELECT COUNT(*) FROM record_log WHERE table_name = 'rooms'") == 1, "Ben's forget would take it"
    assert await h.db.fetchval("SELECT COUNT(*) FROM outbox WHERE room_id = ? AND event_type = 'nz.ako.record'", (dm,)) == 0
    await h.say(LEARNER_A, dm, "!tz")
    assert await h.db.fetchval("SELECT COUNT(*) FROM record_log") == 0


async def test_an_example_id_in_a_message_does_not_stop_it_carrying_records(h):
    """!help shows "@user:server": nobody Ako holds records about, so nothing !forget could take."""
    dm = "!ana-dm:a.test"
    await classroom(h)
    await h.repos.rooms.add(dm, "dm", None, LEARNER_A, NOW)
    async with h.db.transaction():
        await h.repos.outbox.put(dm, "m.room.message", {"msgtype": "m.notice", "body": "Write someone as @user:server."}, NOW)
    assert await h.db.fetchval("SELECT COUNT(*) FROM record_log") == 0, "the room's record rides on the message"


async def test_a_fault_in_the_journal_never_costs_the_classroom_its_change(h, monkeypatch, caplog):
    c = await classroom(h)
    before = await h.db.fetchval("SELECT MAX(id) FROM outbox")

    def broken(table, row):
        raise RuntimeError("a bug in the routing")

    monkeypatch.setattr(record_rooms, "where", broken)
    reply = await h.say(TEACHER_A, c.class_room, '!assign new "Essay" due 2026-12-11 17:00 points 10')
    assert "Posted **A1" in reply
    assert await h.repos.assignments.by_number(c.klass.id, 1) is not None
    assert "Could not write the records" in caplog.text
    waiting = {r["table_name"] for r in await h.db.fetchall("SELECT table_name FROM record_log")}
    assert {"assignments", "processed_events"} <= waiting
    assert not [r for r in await h.db.fetchall("SELECT content FROM outbox WHERE id > ?", (before,))
                if record_format.CONTENT_KEY in json.loads(r["content"])], "nothing half-written"
    monkeypatch.undo()
    await h.say(TEACHER_A, c.class_room, "!assignments")
    assert await h.db.fetchval("SELECT COUNT(*) FROM record_log") == 0
