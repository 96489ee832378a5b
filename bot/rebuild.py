"""``ako rebuild``: the database again, from the rooms.

After the identity and room keys are restored (``ako restore-keys``' work), walk every room Ako is in
(its current state and its whole history, decrypting with the restored keys), gather the record
objects (``storage.record_format``) from every event **Ako's own user id** sent — nobody else's count —
and apply them in ``seq`` order into a fresh database at the
newest schema, in one transaction. The journal (``record_log``) is left empty with its counter at the
highest seq, so new changes continue the sequence and nothing applied is written to the rooms again.

Where Ako resumes: the rebuilt database also gets the rows a running Ako keeps about its place in the
event stream (``joined_rooms``, the sync position), set so that its first sync hands it every event
after the last one it handled in each room (those were handled; ``processed_events`` came back with
the records and keeps anything handled from being handled twice), so commands sent while it was
down are answered once, and nothing from before is.

The database is written as ``ako.db.rebuilding`` and renamed to ``ako.db`` only when complete: a
rebuild that stops half way leaves no database for ``ako run`` to start on.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable
from urllib.parse import quote

import nio

from storage import export, record_format
from storage.db import Database

from .encryption import client_config, store_dir
from .identity import _request

JOURNAL = "record_log"


class RebuildError(Exception):
    """A sentence for the admin: why the database was not rebuilt."""


@dataclass
class Walk:
    rooms: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    events: int = 0  # in the rooms' history, as far back as Ako may read
    encrypted: int = 0
    decrypted: int = 0  # with the restored room keys
    own_unreadable: Counter = field(default_factory=Counter)  # room → Ako's own encrypted events it cannot decrypt
    changes: list[dict] = field(default_factory=list)  # from Ako's own events (parts not yet joined)
    objects: int = 0  # record objects read
    others: int = 0  # record objects in events someone else sent: never applied
    timelines: dict[str, list[str]] = field(default_factory=dict)  # room → event ids, newest first
    own_joins: dict[str, str] = field(default_factory=dict)  # room → Ako's latest join, by event id


@dataclass
class Applied:
    changes: int
    highest_seq: int
    tables: Counter  # rows per record table after the rebuild
    orphans: list[str] = field(default_factory=list)  # rows whose parent no record holds


# --- reading the record objects out of events (pure)


def records_in(event: dict, own_user_id: str) -> list[dict] | None:
    """The changes an event carries when Ako's own user id sent it; None when someone else's event
    carries a record object (authority comes only from Ako's own records); [] when it carries none."""
    content = event.get("content")
    if not isinstance(content, dict) or record_format.CONTENT_KEY not in content:
        return []
    if event.get("sender") != own_user_id:
        return None
    try:
        return record_format.decode(content)
    except record_format.RecordFormatError as e:
        raise RebuildError(f"Event {event.get('event_id', '?')} holds a record Ako cannot read: {e}") from None


def _own_join(event: dict, own_user_id: str) -> bool:
    if event.get("type") != "m.room.member" or event.get("state_key") != own_user_id:
        return False
    if (event.get("content") or {}).get("membership") != "join":
        return False
    return ((event.get("unsigned") or {}).get("prev_content") or {}).get("membership") != "join"


def take(walk: Walk, room_id: str, event: dict, own_user_id: str) -> None:
    """One (decrypted) event of a room's history, newest first: its records, its place."""
    found = records_in(event, own_user_id)
    if found is None:
        walk.others += 1
    elif found:
        walk.objects += 1
        walk.changes.extend(found)
    if event.get("event_id"):
        walk.timelines.setdefault(room_id, []).append(event["event_id"])
        if room_id not in walk.own_joins and _own_join(event, own_user_id):
            walk.own_joins[room_id] = event["event_id"]


# --- writing the database (pure, sqlite3)


def _columns(conn: sqlite3.Connection, table: str) -> tuple[list[str], list[str]]:
    info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    columns = [c[1] for c in info]
    keys = [c[1] for c in sorted((c for c in info if c[5]), key=lambda c: c[5])] or columns
    return columns, keys


def _unknown(names: Iterable[str], allowed: list[str]) -> list[str]:
    return sorted(set(names) - set(allowed))


def apply(path: Path, changes: list[dict]) -> Applied:
    """Every change, whole and in seq order, into the (freshly migrated) database at ``path``, in one
    transaction; then the journal emptied with its counter at the highest seq, and every id counter
    (``id_sequences``) past every id the records ever gave."""
    whole = record_format.join(changes)  # raises RecordFormatError: a part missing, two changes with one seq
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # Off while applying: an INSERT OR REPLACE of a row others refer to would cascade into them. Checked after.
        conn.execute("PRAGMA foreign_keys=OFF")
        record_tables = set(export.tables(conn)) - set(export.NOT_RECORDS)
        shapes: dict[str, tuple[list[str], list[str]]] = {}
        highest_ids: Counter = Counter()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for change in whole:
                try:
                    _one(conn, change, record_tables, shapes, highest_ids)
                except sqlite3.IntegrityError as e:
                    raise RebuildError(f"Change {change['seq']} ({change['op']} in {change['table']}) breaks the database's rules: {e}.") from None
            # A change still waiting in the lost database's journal (storage.record_journal) can leave a row
            # whose parent never reached a room: kept, and named in the summary, rather than dropped unseen.
            orphans = [f"{t} row {r} refers to a missing {p} row" for t, r, p, _ in conn.execute("PRAGMA foreign_key_check")]
            highest = whole[-1]["seq"] if whole else 0
            if JOURNAL in export.tables(conn):
                conn.execute(f'DELETE FROM "{JOURNAL}"')
                conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (JOURNAL,))
                conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (JOURNAL, highest))
            if "id_sequences" in export.tables(conn):
                for name, last in conn.execute("SELECT name, last FROM id_sequences").fetchall():
                    conn.execute("UPDATE id_sequences SET last = ? WHERE name = ?", (max(last, highest_ids[name]), name))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        tables = Counter({t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in sorted(record_tables)})
    finally:
        conn.close()
    return Applied(changes=len(whole), highest_seq=whole[-1]["seq"] if whole else 0, tables=tables, orphans=orphans)


def _one(conn: sqlite3.Connection, change: dict, record_tables: set[str], shapes: dict, highest_ids: Counter) -> None:
    """One change: a put replaces the whole row, a delete removes it by its key."""
    table = change["table"]
    if table not in record_tables:
        raise RebuildError(f"Change {change['seq']} is for {table!r}, which holds no record in this Ako's database.")
    columns, keys = shapes.setdefault(table, _columns(conn, table))
    if change["op"] == record_format.PUT:
        row = change["row"]
        if bad := _unknown(row, columns):
            raise RebuildError(f"Change {change['seq']} gives {table} columns it does not have: {', '.join(bad)}.")
        names = sorted(row)
        conn.execute(
            f'INSERT OR REPLACE INTO "{table}" (' + ", ".join(f'"{n}"' for n in names) + ") "
            f'VALUES ({", ".join("?" for _ in names)})',
            [_value(row[n]) for n in names],
        )
        given = row
    else:
        key = change["key"]
        if set(key) != set(keys):
            raise RebuildError(f"Change {change['seq']} deletes from {table} by {sorted(key)}, not by its key {keys}.")
        conn.execute(
            f'DELETE FROM "{table}" WHERE ' + " AND ".join(f'"{k}" IS ?' for k in sorted(key)),
            [_value(key[k]) for k in sorted(key)],
        )
        given = key
    if isinstance(given.get("id"), int):
        highest_ids[table] = max(highest_ids[table], given["id"])


def _value(v):
    """A column's value as the record carries it (JSON: text, numbers, null; anything else as its JSON text)."""
    return json.dumps(v, sort_keys=True, separators=(",", ":")) if isinstance(v, (dict, list)) else v


# --- where Ako resumes (pure)


def anchors(walk: Walk, handled: dict[str, set[str]]) -> dict[str, str]:
    """Per room, the event after which Ako resumes: the newest event it handled there (``processed_events``),
    else its own latest join (nothing after it was handled yet), else none (the room's history is unread)."""
    out = {}
    for room_id in walk.rooms:
        done = handled.get(room_id, set())
        newest = next((e for e in walk.timelines.get(room_id, []) if e in done), None)
        chosen = newest or walk.own_joins.get(room_id)
        if chosen:
            out[room_id] = chosen
    return out


_ROOM_POSITION = re.compile(r"^[st](?:\d+-)?(-?\d+)$")


def stream_position(token: str) -> int | None:
    """The stream position of a room pagination token (Synapse: ``t<depth>-<stream>_…`` or ``s<stream>_…``)."""
    m = _ROOM_POSITION.match(token.split("_", 1)[0])
    return int(m.group(1)) if m else None


def resume_token(context_tokens: list[str]) -> str | None:
    """A sync position before every event after the anchors: the earliest anchor's stream position as
    the room part, the rest as the homeserver gave it around the event (its other streams from their start,
    so to-device messages waiting for the new device, room keys among them, are all delivered)."""
    best = None
    for token in context_tokens:
        pos = stream_position(token)
        if pos is None or "_" not in token:
            return None  # a homeserver whose tokens we cannot read: no guess
        if best is None or pos < best[0]:
            best = (pos, token)
    if best is None:
        return None
    return f"s{max(best[0], 0)}" + best[1][best[1].index("_"):]


# --- the walk (Matrix)


async def walk(client: nio.AsyncClient, progress: Callable[[str], None]) -> Walk:
    """Every joined room: its current state and its whole history back to the start, each encrypted
    event decrypted with the restored room keys where they allow. (Every record has a room: nothing is
    kept in account data, see storage.record_format.)"""
    me = client.user_id
    status, data = await _request(client, "GET", "/_matrix/client/v3/joined_rooms", {})
    if status != 200:
        raise RebuildError(f"The homeserver did not list Ako's rooms: {status} {data.get('errcode', '')}.")
    found = Walk(rooms=sorted(data.get("joined_rooms") or []))
    auth = {"Authorization": f"Bearer {client.access_token}"}
    for i, room_id in enumerate(found.rooms, 1):
        resp = await client.send("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state", headers=auth)
        if resp.status != 200:
            found.unreadable.append(room_id)
            continue
        for event in await resp.json(content_type=None):
            changes = records_in(event, me)
            if changes:  # the same object is met again in the history; join() counts it once
                found.changes.extend(changes)
        await _history(client, room_id, found, auth)
        progress(f"  rooms walked: {i}/{len(found.rooms)} ({found.events} events so far, {found.objects} record objects)")
    return found


async def _history(client: nio.AsyncClient, room_id: str, found: Walk, auth: dict) -> None:
    start = ""
    while True:
        page = f"/_matrix/client/v3/rooms/{quote(room_id)}/messages?dir=b&limit=500" + (f"&from={quote(start)}" if start else "")
        resp = await client.send("GET", page, headers=auth)
        if resp.status != 200:
            found.unreadable.append(room_id)
            return
        body = await resp.json(content_type=None)
        for raw in body.get("chunk") or []:
            found.events += 1
            event = raw
            if raw.get("type") == "m.room.encrypted":
                found.encrypted += 1
                clear = _decrypt(client, room_id, raw)
                if clear is not None:
                    found.decrypted += 1
                    event = {**raw, "type": clear.get("type"), "content": clear.get("content")}
                elif raw.get("sender") == client.user_id:  # it may have carried records: say so
                    found.own_unreadable[room_id] += 1
            take(found, room_id, event, client.user_id)
        if not body.get("end") or not body.get("chunk"):
            return
        start = body["end"]


def _decrypt(client: nio.AsyncClient, room_id: str, raw: dict) -> dict | None:
    try:
        event = nio.MegolmEvent.from_dict(raw)
        if not isinstance(event, nio.MegolmEvent):
            return None
        event.room_id = room_id
        clear = client.decrypt_event(event)
    except (nio.exceptions.EncryptionError, KeyError, TypeError, ValueError):
        return None
    if isinstance(clear, (nio.BadEvent, nio.UnknownBadEvent)):
        return None
    return clear.source


async def record_tables() -> list[str]:
    """Every table the schema holds records in (storage.export's view), from the migrations themselves."""
    db = await Database.open(":memory:")
    try:
        rows = await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    finally:
        await db.close()
    return [r[0] for r in rows if r[0] not in export.NOT_RECORDS]


async def _resume_at(client: nio.AsyncClient, points: dict[str, str], auth: dict) -> str | None:
    """The sync position just after the earliest anchor, checked by the homeserver itself; None when it
    cannot be had (Ako then starts as a new device does: from now on)."""
    tokens = []
    for room_id, event_id in points.items():
        resp = await client.send("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/context/{quote(event_id)}?limit=0", headers=auth)
        if resp.status != 200:
            return None
        end = (await resp.json(content_type=None)).get("end")
        if not isinstance(end, str):
            return None
        tokens.append(end)
    token = resume_token(tokens)
    if token is None:
        return None
    nothing = json.dumps({"room": {"rooms": []}, "presence": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]}})
    resp = await client.send("GET", f"/_matrix/client/v3/sync?timeout=0&since={quote(token)}&filter={quote(nothing)}", headers=auth)
    return token if resp.status == 200 else None


# --- the whole rebuild


@dataclass
class Rebuilt:
    walk: Walk
    applied: Applied
    resumes: bool  # whether Ako's first sync starts after the last event it handled (else: from now on)


async def run(homeserver: str, data_dir: Path, progress: Callable[[str], None]) -> Rebuilt:
    """With the restored device (session.json, crypto/) and its keys: the database, written whole or not at all."""
    session = json.loads((data_dir / "session.json").read_text())
    client = nio.AsyncClient(
        homeserver, session["user_id"], device_id=session["device_id"], store_path=str(store_dir(data_dir)),
        config=client_config(True, max_timeouts=2, request_timeout=60),
    )
    client.restore_login(session["user_id"], session["device_id"], session["access_token"])
    database = data_dir / "ako.db"
    building = data_dir / "ako.db.rebuilding"
    try:
        found = await walk(client, progress)
        if found.rooms and not found.changes:
            raise RebuildError(
                f"Ako is in {len(found.rooms)} room(s) but none of them holds a record it wrote "
                f"({found.decrypted} of {found.encrypted} encrypted events could be read)."
            )
        progress(f"Applying {len(found.changes)} change(s) in seq order…")
        for stale in (building, Path(f"{building}-wal"), Path(f"{building}-shm"), Path(f"{building}-journal")):
            stale.unlink(missing_ok=True)
        db = await Database.open(building)  # the newest schema
        await db.close()
        conn = sqlite3.connect(building)
        conn.execute("PRAGMA journal_mode=DELETE")  # one file, renamed whole
        conn.close()
        try:
            applied = apply(building, found.changes)
        except record_format.RecordFormatError as e:
            raise RebuildError(f"The records in the rooms do not join up: {e}") from None
        auth = {"Authorization": f"Bearer {client.access_token}"}
        handled = _handled(building)
        token = await _resume_at(client, anchors(found, handled), auth)
        _place(building, found.rooms, token)
        os.replace(building, database)
        return Rebuilt(found, applied, resumes=token is not None)
    finally:
        building.unlink(missing_ok=True)
        await client.close()


def _handled(path: Path) -> dict[str, set[str]]:
    conn = sqlite3.connect(path)
    try:
        out: dict[str, set[str]] = {}
        for event_id, room_id in conn.execute("SELECT event_id, room_id FROM processed_events"):
            out.setdefault(room_id, set()).add(event_id)
        return out
    finally:
        conn.close()


def _place(path: Path, rooms: list[str], token: str | None) -> None:
    """Where this device is in the event stream: every room joined (so its events count), and the sync position."""
    now = datetime.now(timezone.utc).isoformat()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR IGNORE INTO joined_rooms (room_id, joined_at) VALUES (?, ?)", [(r, now) for r in rooms])
        if token is not None:
            conn.execute("INSERT OR REPLACE INTO sync_state (key, value) VALUES ('next_batch', ?)", (token,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def report(done: Rebuilt, database: Path) -> str:
    w, a = done.walk, done.applied
    tables = ", ".join(f"{t} {n}" for t, n in sorted(a.tables.items()) if n) or "none"
    lines = [
        f"Rebuilt {database} from {len(w.rooms)} room(s): {a.changes} change(s) applied in seq order "
        f"(the highest seq {a.highest_seq}), from {w.objects} record object(s).",
        f"Rows per table: {tables}.",
        f"History read: {w.events} events, {w.encrypted} of them encrypted, {w.decrypted} of those decrypted with the restored room keys"
        + (f"; {len(w.unreadable)} room(s) could not be read: {', '.join(w.unreadable)}" if w.unreadable else "")
        + (f"; {w.others} record object(s) in events others sent were ignored" if w.others else "")
        + ".",
    ]
    if w.own_unreadable:
        lines.append(
            f"WARNING: {sum(w.own_unreadable.values())} event(s) Ako itself sent could not be decrypted (their room keys are not "
            f"in the key backup), in {', '.join(sorted(w.own_unreadable))}: any records they carried are missing from the "
            "rebuilt database. Compare it with the last `ako export --all` or `ako backup` if there is one."
        )
    if a.orphans:
        lines.append(
            f"WARNING: {len(a.orphans)} row(s) refer to rows no record in the rooms holds (changes that had not reached a room "
            f"when the disk was lost): {'; '.join(a.orphans[:5])}{' …' if len(a.orphans) > 5 else ''}."
        )
    lines += [
        "Ako resumes after the last event it handled in each room: what was sent to it while it was down is answered at its next start."
        if done.resumes else
        "The homeserver gave no sync position Ako could resume from: at its next start it acts only on what arrives from then on.",
    ]
    return "\n".join(lines)
