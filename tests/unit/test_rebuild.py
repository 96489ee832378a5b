"""`ako rebuild`'s reading side, with record events made by hand in the agreed format
(/work/prompts/record-format.md, storage/record_format.py): only Ako's own events count, changes apply
in seq order whatever room or order they were found in, parts join back, the journal's counter ends at
the highest seq, and Ako resumes right after the last event it handled in each room."""

import sqlite3

import pytest

from bot import rebuild
from storage import export, record_format
from storage.db import Database

from .fakes import BOT, LEARNER_A, TEACHER_A
from .test_export_all import a_term

MALLORY = "@mallory:b.test"


def rows_of(path) -> dict[str, list[dict]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        names = [n for n in export.tables(conn) if n not in export.NOT_RECORDS]
        return {n: [dict(r) for r in conn.execute(f'SELECT * FROM "{n}"')] for n in names}
    finally:
        conn.close()


def event(sender, event_id, changes) -> dict:
    return {
        "type": record_format.EVENT_TYPE, "sender": sender, "event_id": event_id,
        "content": record_format.event_content(record_format.encode(changes)),
    }


async def fresh(path):
    db = await Database.open(path)
    await db.close()
    return path


def read_all(events, walk=None, room="!r:a.test") -> rebuild.Walk:
    walk = walk or rebuild.Walk(rooms=[room])
    for e in events:
        rebuild.take(walk, room, e, BOT)
    return walk


async def test_a_term_comes_back_exactly_from_ako_s_own_events_and_nobody_else_s(harness, tmp_path):
    h = harness
    await a_term(h)
    before = export.export_all(h.db.path)
    changes, seq = [], 0
    for table, rows in sorted(rows_of(h.db.path).items()):
        for row in rows:
            seq += 1
            changes.append(record_format.put(seq, table, row))
    assert seq > 40
    # spread over events in three rooms, met newest first, in no particular order of seq
    events = [event(BOT, f"$e{i}", changes[i::3]) for i in range(3)]
    grade = rows_of(h.db.path)["grades"][0]
    forged = dict(grade, score=20, feedback="Perfect, says Mallory")
    events.insert(1, event(MALLORY, "$forged", [record_format.put(seq + 1, "grades", forged)]))
    events.append({"type": "m.room.message", "sender": LEARNER_A, "event_id": "$chat", "content": {"body": "hi"}})
    walk = read_all(events)
    assert walk.others == 1 and walk.objects == 3

    target = await fresh(tmp_path / "rebuilt.db")
    applied = rebuild.apply(target, walk.changes)
    assert applied.changes == seq and applied.highest_seq == seq
    assert export.export_all(target) == before  # byte for byte
    assert applied.tables["grades"] == 1 and applied.tables["submissions"] == 2


async def test_changes_apply_in_seq_order_whatever_order_they_are_found_in(tmp_path):
    school = {"server": "a.test", "name": "Kura A", "added_by": "@op:a.test", "added_at": "2026-11-30T03:00:00+00:00"}
    renamed = dict(school, name="Te Kura o A")
    other = dict(school, server="b.test", name="Kura B")
    # newest first, as the walk meets them: the rename (seq 3) is seen before the first put (seq 1)
    walk = read_all([
        event(BOT, "$3", [record_format.put(3, "schools", renamed), record_format.delete(4, "schools", {"server": "b.test"})]),
        event(BOT, "$2", [record_format.put(2, "schools", other)]),
        event(BOT, "$1", [record_format.put(1, "schools", school)]),
        event(BOT, "$5", [record_format.put(5, "schools", other)]),  # found in another room, written after the delete
    ])
    target = await fresh(tmp_path / "rebuilt.db")
    rebuild.apply(target, walk.changes)
    assert [(r["server"], r["name"]) for r in rows_of(target)["schools"]] == [("a.test", "Te Kura o A"), ("b.test", "Kura B")]

    walk = read_all([event(BOT, "$x", [record_format.put(1, "schools", school), record_format.put(2, "schools", renamed),
                                       record_format.delete(3, "schools", {"server": "a.test"})])])
    target = await fresh(tmp_path / "again.db")
    rebuild.apply(target, walk.changes)
    assert rows_of(target)["schools"] == []


async def test_a_long_row_split_into_parts_over_two_events_is_joined_back(tmp_path):
    school = {"server": "a.test", "name": "Kura " + "ā" * 30_000, "added_by": "@op:a.test", "added_at": "2026-11-30T03:00:00+00:00"}
    pieces = record_format.parts(record_format.put(7, "schools", school), limit=20_000)
    assert len(pieces) >= 3
    walk = read_all([event(BOT, f"$p{i}", [p]) for i, p in enumerate(reversed(pieces))])
    target = await fresh(tmp_path / "rebuilt.db")
    assert rebuild.apply(target, walk.changes).highest_seq == 7
    assert rows_of(target)["schools"] == [school]

    walk = read_all([event(BOT, "$p", pieces[:-1])])  # the last part never found
    with pytest.raises(record_format.RecordFormatError, match="missing parts"):
        rebuild.apply(await fresh(tmp_path / "short.db"), walk.changes)


async def test_the_journal_ends_empty_at_the_highest_seq_and_no_reminder_id_is_given_twice(tmp_path):
    row = {
        "id": 12, "class_id": None, "created_by": TEACHER_A, "room_id": "!dm:a.test", "text": "Bring lab books",
        "next_at": "2026-12-01T19:30:00+00:00", "weekdays": None, "local_time": None, "timezone": "Pacific/Auckland",
        "created_at": "2026-11-30T03:00:00+00:00", "cancelled_at": None, "cancelled_by": None,
    }
    target = await fresh(tmp_path / "rebuilt.db")
    conn = sqlite3.connect(target)
    has_journal = "record_log" in export.tables(conn)
    conn.close()
    walk = read_all([event(BOT, "$a", [record_format.put(40, "reminders", row), record_format.delete(41, "reminders", {"id": 12})])])
    rebuild.apply(target, walk.changes)
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("SELECT COUNT(*) FROM reminders").fetchone()[0] == 0
        # the deleted reminder's id is never given again (its sends are named by it)
        assert conn.execute("SELECT last FROM id_sequences WHERE name = 'reminders'").fetchone()[0] == 12
        if has_journal:
            assert conn.execute("SELECT COUNT(*) FROM record_log").fetchone()[0] == 0
            assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'record_log'").fetchone()[0] == 41
    finally:
        conn.close()


async def test_records_that_do_not_fit_this_database_are_refused_with_a_sentence(tmp_path):
    school = {"server": "a.test", "name": "Kura A", "added_by": "@op:a.test", "added_at": "2026-11-30T03:00:00+00:00"}
    cases = [
        ([record_format.put(1, "outbox", {"id": 1})], "holds no record"),
        ([record_format.put(1, "schools", dict(school, motto="Ako"))], "columns it does not have: motto"),
        ([record_format.delete(1, "schools", {"name": "Kura A"})], "not by its key"),
        ([record_format.put(1, "schools", dict(school, name=None))], "breaks the database's rules: NOT NULL"),
        ([record_format.put(1, "schools", school), record_format.put(1, "schools", dict(school, name="B"))], "Two different changes"),
    ]
    for i, (changes, sentence) in enumerate(cases):
        with pytest.raises((rebuild.RebuildError, record_format.RecordFormatError), match=sentence):
            rebuild.apply(await fresh(tmp_path / f"{i}.db"), changes)
    with pytest.raises(rebuild.RebuildError, match="holds a record Ako cannot read"):
        rebuild.take(rebuild.Walk(), "!r", {"sender": BOT, "event_id": "$bad", "content": {record_format.CONTENT_KEY: {"v": 9}}}, BOT)


def test_ako_resumes_after_the_last_event_it_handled_in_each_room():
    walk = rebuild.Walk(rooms=["!class", "!work", "!new", "!unread"])
    join = {"type": "m.room.member", "state_key": BOT, "sender": BOT, "content": {"membership": "join"}}
    history = {  # newest first
        "!class": [{"event_id": "$late"}, {"event_id": "$cmd2"}, {"event_id": "$chat"}, {"event_id": "$cmd1"}, dict(join, event_id="$j1")],
        "!work": [{"event_id": "$w2"}, {"event_id": "$w1"}, dict(join, event_id="$j2")],
        "!new": [{"event_id": "$n1"}, dict(join, event_id="$j3", unsigned={"prev_content": {"membership": "join"}}),
                 dict(join, event_id="$j3a")],
    }
    for room, events in history.items():
        for e in events:
            rebuild.take(walk, room, e, BOT)
    handled = {"!class": {"$cmd1", "$cmd2", "$chat"}, "!work": {"$w1"}}
    # a profile change is not a join; a room with nothing handled resumes after Ako's join; an unread room adds nothing
    assert rebuild.anchors(walk, handled) == {"!class": "$cmd2", "!work": "$w1", "!new": "$j3a"}

    # the earliest of the rooms' positions, the other streams as the homeserver gave them
    assert rebuild.resume_token(["t12-340_0_0_0_0_0_0_0_0_0", "t3-95_0_0_0_0_0_0_0_0_0", "t7-210_0_0_0_0_0_0_0_0_0"]) == "s95_0_0_0_0_0_0_0_0_0"
    assert rebuild.resume_token(["s80_1_2"]) == "s80_1_2"
    assert rebuild.resume_token(["x80_1_2"]) is None and rebuild.resume_token(["t1-5"]) is None and rebuild.resume_token([]) is None


def test_a_non_empty_data_folder_is_refused_before_anything_is_read(tmp_path, capsys):
    from bot.cli import main as ako

    from .test_key_backup import _config

    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    assert ako(["rebuild", "--config", _config(tmp_path, data), "--recovery-key", "EsT0 xxxx"]) == 1
    err = capsys.readouterr().err
    assert f"{data} (bot.data_dir) is not empty" in err and "Traceback" not in err
    assert sorted(p.name for p in data.iterdir()) == ["notes.txt"]


def test_the_summary_warns_when_some_of_ako_s_own_events_cannot_be_read(tmp_path):
    from collections import Counter

    walk = rebuild.Walk(rooms=["!a", "!b"], events=40, encrypted=10, decrypted=8, objects=5, others=1)
    applied = rebuild.Applied(changes=12, highest_seq=15, tables=Counter({"schools": 2, "classes": 1, "grades": 0}))
    text = rebuild.report(rebuild.Rebuilt(walk, applied, resumes=True), tmp_path / "ako.db")
    assert "from 2 room(s): 12 change(s) applied in seq order (the highest seq 15)" in text
    assert "Rows per table: classes 1, schools 2." in text and "1 record object(s) in events others sent were ignored" in text
    assert "WARNING" not in text and "Ako resumes after the last event it handled" in text
    walk.own_unreadable = Counter({"!b": 2})
    text = rebuild.report(rebuild.Rebuilt(walk, applied, resumes=False), tmp_path / "ako.db")
    assert "WARNING: 2 event(s) Ako itself sent could not be decrypted" in text and "in !b:" in text
    assert "acts only on what arrives from then on" in text


async def test_a_row_whose_parent_never_reached_a_room_is_kept_and_named(tmp_path):
    """A change still waiting in the lost database's journal can leave a child without its parent."""
    target = await fresh(tmp_path / "rebuilt.db")
    conn = sqlite3.connect(target)
    columns = [c[1] for c in conn.execute("PRAGMA table_info(class_members)")]
    conn.close()
    member = {c: None for c in columns}
    member.update({"class_id": 7, "user_id": LEARNER_A, "role": "learner", "added_by": TEACHER_A, "added_at": "2026-11-30T03:00:00+00:00"})
    member = {k: v for k, v in member.items() if k in columns}
    applied = rebuild.apply(target, [record_format.put(3, "class_members", member)])
    assert rows_of(target)["class_members"] == [member]
    assert applied.orphans == ["class_members row 1 refers to a missing classes row"]
    text = rebuild.report(rebuild.Rebuilt(rebuild.Walk(rooms=["!a"]), applied, resumes=True), tmp_path / "ako.db")
    assert "WARNING: 1 row(s) refer to rows no record in the rooms holds" in text
