"""Issue 19, item 1 end to end: every record of a small class is in the rooms, in Ako's own events,
exactly as ``ako export --all`` has it; and a learner reads neither the class's code nor another
learner's work through them.

The records are read back the way ``ako rebuild`` will: as Ako's own account (its access token from
its session file, no new device), every event of every room of the class, ``content["nz.ako.record"]``
of the events Ako sent, applied in seq order to an empty database (storage.record_format).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from urllib.parse import quote

import nio
import pytest

from storage import export, record_format
from storage.db import Database
from tests.matrix_user import MatrixError, unique_localpart

from .helpers import class_with_ana_and_ben, db_rows

SECRET_BEN = "Ben's own words about the Waikato, for no other learner"


async def ako_events(hs, bot) -> dict[str, list[dict]]:
    """Every event of every room Ako is in, as Ako reads them (its own session: no new device), oldest first."""
    session = json.loads((bot.data_dir / "session.json").read_text())
    client = nio.AsyncClient(hs.client_url, session["user_id"], device_id=session["device_id"])
    client.restore_login(session["user_id"], session["device_id"], session["access_token"])
    auth = {"Authorization": f"Bearer {client.access_token}"}
    try:
        resp = await client.send("GET", "/_matrix/client/v3/joined_rooms", headers=auth)
        rooms = (await resp.json(content_type=None))["joined_rooms"]
        return {room: await _history(client, room) for room in rooms}
    finally:
        await client.close()


async def _history(client, room_id: str) -> list[dict]:
    events, start = [], ""
    while True:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/messages?dir=b&limit=200" + (f"&from={quote(start)}" if start else "")
        resp = await client.send("GET", path, headers={"Authorization": f"Bearer {client.access_token}"})
        assert resp.status == 200, (room_id, resp.status)
        body = await resp.json(content_type=None)
        events += body.get("chunk") or []
        if not body.get("end") or not body.get("chunk"):
            return list(reversed(events))
        start = body["end"]


def changes_in(events: list[dict], sender: str) -> list[dict]:
    return [c for e in events if e.get("sender") == sender for c in record_format.decode(e.get("content") or {})]


async def settled(owner, timeout: float = 60) -> None:
    """Everything Ako queued is sent, and no change waits for a room (but in direct messages)."""
    deadline = time.monotonic() + timeout
    while db_rows(owner, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")[0][0]:
        assert time.monotonic() < deadline, "the outbox did not empty"
        await asyncio.sleep(0.5)


def applied(changes: list[dict], path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA foreign_keys = OFF")
    for c in record_format.join(changes):
        if c["op"] == "put":
            cols = list(c["row"])
            conn.execute(f'INSERT OR REPLACE INTO "{c["table"]}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})',
                         [c["row"][k] for k in cols])
        else:
            conn.execute(f'DELETE FROM "{c["table"]}" WHERE ' + " AND ".join(f"{k} = ?" for k in c["key"]), list(c["key"].values()))
    conn.commit()
    return conn


def of_class(doc: dict, class_id: int, rooms: set[str]) -> dict:
    """The export's rows that belong to one class (and the commands handled in its rooms)."""
    t = doc["tables"]
    assignments = {a["id"] for a in t["assignments"] if a["class_id"] == class_id}
    return {
        "classes": [r for r in t["classes"] if r["id"] == class_id],
        "class_members": [r for r in t["class_members"] if r["class_id"] == class_id],
        "rooms": [r for r in t["rooms"] if r["class_id"] == class_id],
        "assignment_counters": [r for r in t["assignment_counters"] if r["class_id"] == class_id],
        "assignments": [r for r in t["assignments"] if r["class_id"] == class_id],
        "submissions": [r for r in t["submissions"] if r["assignment_id"] in assignments],
        "grades": [r for r in t["grades"] if r["assignment_id"] in assignments],
        "processed_events": [r for r in t["processed_events"] if r["room_id"] in rooms],
    }


@pytest.fixture(scope="module")
async def term(cluster, hs_a, hs_b):
    code = "REC" + unique_localpart("c")[-5:].upper()
    async with class_with_ana_and_ben(cluster, hs_a, hs_b, f"Records {code}", code) as k:
        teacher, ana, ben = k.teacher, k.ana, k.ben
        reply = await teacher.command(k.class_room, '!assign new "River essay" due in 10 days points 20\nWrite about a river.')
        assert reply["body"].startswith("Posted **A1"), reply["body"]
        reply = await ana.command(k.ana_work, "!submit A1 Rivers carry water to the sea.")
        assert reply["body"].startswith("Received"), reply["body"]
        reply = await ben.command(k.ben_work, f"!submit A1 {SECRET_BEN}")
        assert reply["body"].startswith("Received"), reply["body"]
        reply = await teacher.command(k.ana_work, "!grade A1 17/20 Clear and careful.")
        assert "17" in reply["body"], reply["body"]
        await settled(cluster)
        class_id = db_rows(cluster, "SELECT id FROM classes WHERE code = ?", (code,))[0][0]
        yield dict(code=code, class_id=class_id, ana=ana, ben=ben, rooms={
            "class": k.class_room, "staff": k.staff_room, "ana work": k.ana_work, "ben work": k.ben_work,
            "teacher dm": k.teacher_dm, "ana dm": k.ana_dm, "ben dm": k.ben_dm,
        })


async def test_the_rooms_carry_exactly_the_records_of_the_export(term, cluster, hs_a, tmp_path):
    rooms = term["rooms"]
    class_rooms = {rooms[k] for k in ("class", "staff", "ana work", "ben work")}
    found = []
    walked = await ako_events(hs_a, cluster.bot)
    for room, events in walked.items():  # as `ako rebuild` walks them
        found += changes_in(events, cluster.bot_id)
    assert found, "no records in the rooms"
    # in the learner's work room, the submission and the grade ride on the receipt and the grade
    # message Ako sends there anyway: no event of their own (nothing more to notify)
    carriers = {c["table"]: e["type"] for e in walked[rooms["ana work"]] if e["sender"] == cluster.bot_id
                for c in record_format.decode(e.get("content") or {})}
    assert carriers["submissions"] == carriers["grades"] == "m.room.message", carriers
    for room, events in walked.items():  # how they travel, with -s
        mine = [e for e in events if e["sender"] == cluster.bot_id and "nz.ako.record" in e.get("content", {})]
        name = {v: k for k, v in rooms.items()}.get(room, room)
        print(f"records in {name}: {sum(e['type'] == 'm.room.message' for e in mine)} on messages, "
              f"{sum(e['type'] == 'nz.ako.record' for e in mine)} in events of their own")
    out = subprocess.run(
        [sys.executable, "-m", "bot", "export", "--all", "--config", str(cluster.bot.config_path)],
        capture_output=True, check=True, timeout=60,
    ).stdout
    exported = of_class(json.loads(out), term["class_id"], class_rooms)
    empty = await Database.open(tmp_path / "rebuilt.db")
    await empty.close()
    conn = applied(found, tmp_path / "rebuilt.db")
    try:
        rebuilt = of_class(export.records(conn), term["class_id"], class_rooms)
    finally:
        conn.close()
    assert exported["submissions"] and exported["grades"] and len(exported["class_members"]) == 3
    for table in exported:
        assert rebuilt[table] == exported[table], table


async def test_a_learner_reads_no_code_and_no_other_learners_work(term, cluster):
    ana, rooms = term["ana"], term["rooms"]
    seen = []
    for room in (rooms["class"], rooms["ana work"], rooms["ana dm"]):
        seen += [e for e in await ana.messages(room, limit=500) if e.get("sender") == cluster.bot_id]
    records = changes_in(seen, cluster.bot_id)
    assert records, "Ana's rooms carry records"
    assert not [c for c in records if c["table"] == "classes"], "the class row (with its code) reached a learner"
    assert term["code"] not in json.dumps(records)
    assert SECRET_BEN not in json.dumps(seen)
    assert {c["row"]["learner"] for c in records if c["table"] in ("submissions", "grades")} == {ana.user_id}
    with pytest.raises(MatrixError):
        await ana.messages(rooms["ben work"])
    # nothing new on screen: no record event is a message, and no message Ako sent reads differently
    shown = [e for e in seen if e["type"] == "m.room.message"]
    assert shown and all("nz.ako.record" not in e["content"].get("body", "") for e in shown)
