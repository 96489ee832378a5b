"""Every record in Ako's database as one canonical JSON document (``ako export --all``), for comparing
two databases (before and after a rebuild) and for audits.

Canonical: keys sorted, no insignificant whitespace, tables by name, rows by primary key; the same
records give the same bytes. Every table is exported unless it is named in ``NOT_RECORDS`` with the
reason it holds no record, so a table added later is exported until someone decides otherwise.
No secrets: the database holds none (the access token is in session.json, private keys in
cross-signing.json and the crypto store, none of which is read here).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from canonicaljson import encode_canonical_json, encode_pretty_printed_json

FORMAT = "ako-export-1"

# Tables that hold the state of this running process or device, not a record of the classroom.
NOT_RECORDS: dict[str, str] = {
    "schema_version": "the database's format, given once as schema_version at the top of the export",
    "sync_state": "this device's position in the homeserver's sync stream, meaningless to another device",
    "joined_rooms": "which rooms this device's sync has seen Ako join, to skip what came before; the rooms say it",
    "outbox": "delivery state of Ako's own messages (attempts, errors, transaction ids); what was sent is in the rooms",
    "outbox_about": "which queued messages mention whom, an index over the outbox for erasing personal data",
    "undecrypted_events": "encrypted messages waiting seconds for their room key; their ciphertext is in the rooms",
    "pending_confirmations": "a yes/no question awaiting its answer, expiring within minutes",
    "marking_sessions": "a teacher's marking in progress (which submission is shown to whom); the grades and returns it leads to are records",
    "marking_skips": "submissions a teacher put aside in one marking session, with that session",
    "record_log": "changes not yet written into the rooms (drained at every commit); the rooms hold the ones written",
    "id_sequences": "the highest reminder id ever given, so none is given twice; the reminders carry their ids",
}


class ExportError(Exception):
    """A sentence for the admin: why there is nothing to export."""


def open_read_only(path: Path) -> sqlite3.Connection:
    """A read-only connection: safe beside a running Ako (WAL lets readers in), never migrates."""
    if not Path(path).exists():
        raise ExportError(f"No database at {path} (bot.data_dir); nothing to export.")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    return [r[0] for r in rows]


def _table(conn: sqlite3.Connection, name: str) -> list[dict]:
    info = conn.execute(f'PRAGMA table_info("{name}")').fetchall()  # (cid, name, type, notnull, default, pk)
    columns = [c[1] for c in info]
    keys = [c[1] for c in sorted((c for c in info if c[5]), key=lambda c: c[5])] or columns
    rows = [dict(zip(columns, r)) for r in conn.execute(f'SELECT * FROM "{name}"')]
    rows.sort(key=lambda row: (tuple(_order(row[k]) for k in keys), encode_canonical_json(row)))
    return rows


def _order(value) -> tuple:
    """NULL first, then numbers, then text: a total order over SQLite's values."""
    if value is None:
        return (0, 0, "")
    if isinstance(value, (int, float)):
        return (1, value, "")
    return (2, 0, str(value))


def records(conn: sqlite3.Connection) -> dict:
    """{"format", "schema_version", "tables": {name: [row, …]}}; empty tables are listed too."""
    version = conn.execute("SELECT version FROM schema_version").fetchone() if "schema_version" in tables(conn) else None
    return {
        "format": FORMAT,
        "schema_version": version[0] if version else 0,
        "tables": {name: _table(conn, name) for name in tables(conn) if name not in NOT_RECORDS},
    }


def encode(doc: dict, pretty: bool = False) -> bytes:
    """Canonical JSON (one line, as Matrix signs it), or the same sorted, indented for reading."""
    return (encode_pretty_printed_json(doc) if pretty else encode_canonical_json(doc)) + b"\n"


def export_all(path: Path, pretty: bool = False) -> bytes:
    conn = open_read_only(path)
    try:
        return encode(records(conn), pretty)
    finally:
        conn.close()
