"""The record format in the rooms: how Ako's journal of changes travels, and how it is read back.

Pure functions, no I/O; the writer (``storage.record_journal``, inside every transaction) and the
reader (``ako rebuild``) both use them, so the two can never disagree.

The object, wherever it travels, lives under the content key ``"nz.ako.record"``::

    {"v": 1, "changes": [{"seq": 17, "table": "submissions", "op": "put", "row": {<every column>}},
                         {"seq": 18, "table": "extensions", "op": "delete", "key": {<primary-key columns>}}]}

either in an event of Ako's own type ``nz.ako.record`` (content ``{"nz.ako.record": {...}}``), or as an
extra field of a message Ako sends to that room anyway in the same transaction. Only events sent by
Ako's own user id count. ``seq`` is global (SQLite's ``record_log.seq``) and only goes up.

Size. One object stays under ``MAX_BYTES`` of JSON (measured with every non-ASCII character escaped,
the largest way it can be written). The format's bound is 60 KB; Ako uses 40 000 bytes so that the
same object, once Megolm-encrypted (base64 makes it 4/3 as long) and wrapped in the event, stays under
Matrix's 65 536-byte event limit. A batch bigger than that is split over several objects, each change
whole (:func:`split`).

A single change bigger than that (a long submission text) is written as PARTS: the change's own
canonical JSON text (``json.dumps(change, sort_keys=True, ensure_ascii=False, separators=(",", ":"))``)
is cut into consecutive slices, each carried as

    {"seq": 17, "table": "submissions", "op": "put", "part": i, "of": n, "text": "<slice i>"}

with ``i`` from 1 to ``n``. Parts go in seq order like any change, possibly in several objects (events)
of the same room. :func:`join` gathers the parts of each seq, checks all ``n`` are there, concatenates
their texts in order and parses the whole change back, exactly as it was.

No account data: every record has a room (``storage.record_rooms``), so the reader needs only the
rooms' events. ``ACCOUNT_DATA_PREFIX`` is reserved and unused.

For the reader (``ako rebuild``):
- Numbers: Matrix events carry no floats, so Ako's sender (``bot.gateway.canonical``) writes a REAL
  20.0 as ``20`` and 20.5 as ``"20.5"``. Every REAL column has REAL affinity, so a plain
  ``INSERT OR REPLACE`` of the row stores 20.0 and 20.5 again; do not compare rows before inserting.
- Order: apply by seq across all rooms; seq order is the order the changes were made, so foreign keys
  hold, but a change still waiting in another database's ``record_log`` when the disk was lost (see
  ``storage.record_journal``) can leave a child without its parent: apply with foreign keys off.
- Apply with the journal off (``db.journal = None``) or empty ``record_log`` in the same transaction
  before it commits: the triggers journal every applied row, and a journal left there at COMMIT would
  be written into the rooms again.
- Redacted events (``!forget``) have no content and carry nothing; that is intended.
- ``processed_events`` rows are only ever put, never deleted, in the rooms (the sweep's deletes are
  not written): the rebuilt table holds old marks too, and Ako's retention sweep deletes them again.
"""

from __future__ import annotations

import json
from typing import Iterable

CONTENT_KEY = "nz.ako.record"
EVENT_TYPE = "nz.ako.record"
ACCOUNT_DATA_PREFIX = "nz.ako.records."
VERSION = 1
MAX_BYTES = 40_000

PUT = "put"
DELETE = "delete"


class RecordFormatError(ValueError):
    """A sentence: what is wrong with a record object found in a room."""


def put(seq: int, table: str, row: dict) -> dict:
    return {"seq": seq, "table": table, "op": PUT, "row": row}


def delete(seq: int, table: str, key: dict) -> dict:
    return {"seq": seq, "table": table, "op": DELETE, "key": key}


def size(obj) -> int:
    """Bytes of JSON in the largest way it can be written (every non-ASCII character escaped)."""
    return len(json.dumps(obj, ensure_ascii=True, separators=(",", ":")))


def encode(changes: Iterable[dict]) -> dict:
    """The object that goes under ``CONTENT_KEY``."""
    return {"v": VERSION, "changes": list(changes)}


def event_content(obj: dict) -> dict:
    """Content of an event of type ``EVENT_TYPE`` carrying one object."""
    return {CONTENT_KEY: obj}


def _canonical(change: dict) -> str:
    return json.dumps(change, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def parts(change: dict, limit: int = MAX_BYTES) -> list[dict]:
    """The change itself when it fits in one object, else its parts (each fits in one object)."""
    if size(encode([change])) <= limit:
        return [change]
    text = _canonical(change)
    head = {"seq": change["seq"], "table": change["table"], "op": change["op"], "part": 0, "of": 0, "text": ""}
    room = limit - size(encode([dict(head, part=10**9, of=10**9)]))
    if room < 64:
        raise RecordFormatError(f"A record object of {limit} bytes has no room for a part.")
    slices = []
    start = 0
    while start < len(text):
        n = room
        while size(text[start:start + n]) - 2 > room:  # -2: the quotes are already in the head
            n = max(1, n // 2)
        slices.append(text[start:start + n])
        start += n
    return [dict(head, part=i, of=len(slices), text=s) for i, s in enumerate(slices, 1)]


def split(changes: Iterable[dict], limit: int = MAX_BYTES) -> list[dict]:
    """Objects (for ``CONTENT_KEY``) carrying the changes in order, each under ``limit`` bytes of JSON."""
    objects: list[list[dict]] = []
    current: list[dict] = []
    empty, used = size(encode([])), 0  # an object's size is its empty shape, its items and a comma between each two
    for change in changes:
        for piece in parts(change, limit):
            n = size(piece)
            if current and empty + used + n + len(current) > limit:
                objects.append(current)
                current, used = [], 0
            current.append(piece)
            used += n
    if current:
        objects.append(current)
    return [encode(c) for c in objects]


def fits(content: dict, obj: dict, limit: int = MAX_BYTES) -> bool:
    """Whether a message's content with the object added stays under ``limit`` bytes."""
    return size(dict(content, **{CONTENT_KEY: obj})) <= limit


def _check_change(c) -> None:
    if not isinstance(c, dict):
        raise RecordFormatError(f"A change must be an object, not {c!r:.60}.")
    if not isinstance(c.get("seq"), int) or isinstance(c.get("seq"), bool) or not isinstance(c.get("table"), str):
        raise RecordFormatError(f"A change needs an integer seq and a table name: {c!r:.120}.")
    if "part" in c:
        if not (isinstance(c.get("part"), int) and isinstance(c.get("of"), int) and 1 <= c["part"] <= c["of"]
                and isinstance(c.get("text"), str)):
            raise RecordFormatError(f"Part of change {c['seq']} needs part (1…of), of and text.")
        return
    if c.get("op") == PUT and isinstance(c.get("row"), dict):
        return
    if c.get("op") == DELETE and isinstance(c.get("key"), dict):
        return
    raise RecordFormatError(f"Change {c['seq']} must be a put with a row or a delete with a key: {c!r:.120}.")


def decode(content: dict) -> list[dict]:
    """The changes (or parts of changes) an event's content carries; [] when it carries none."""
    if not isinstance(content, dict) or CONTENT_KEY not in content:
        return []
    obj = content[CONTENT_KEY]
    if not isinstance(obj, dict) or obj.get("v") != VERSION or not isinstance(obj.get("changes"), list):
        raise RecordFormatError(f"A record object must be {{\"v\": {VERSION}, \"changes\": [...]}}, not {obj!r:.120}.")
    for c in obj["changes"]:
        _check_change(c)
    return list(obj["changes"])


def join(changes: Iterable[dict]) -> list[dict]:
    """Whole changes in seq order, parts joined back; the same change seen twice counts once.

    Raises :class:`RecordFormatError` when a part is missing or two different changes share a seq."""
    whole: dict[int, dict] = {}
    pieces: dict[int, dict[int, dict]] = {}
    for c in changes:
        _check_change(c)
        if "part" in c:
            pieces.setdefault(c["seq"], {})[c["part"]] = c
        else:
            _keep(whole, c)
    for seq, got in pieces.items():
        n = {p["of"] for p in got.values()}
        if len(n) != 1 or set(got) != set(range(1, next(iter(n)) + 1)):
            have = ", ".join(str(i) for i in sorted(got))
            raise RecordFormatError(f"Change {seq} is missing parts: have {have} of {max(n)}.")
        try:
            change = json.loads("".join(got[i]["text"] for i in sorted(got)))
        except ValueError as e:
            raise RecordFormatError(f"Change {seq}'s parts do not join into JSON: {e}.") from None
        _check_change(change)
        if change["seq"] != seq:
            raise RecordFormatError(f"Parts of change {seq} join into change {change['seq']}.")
        _keep(whole, change)
    return [whole[s] for s in sorted(whole)]


def _keep(whole: dict[int, dict], change: dict) -> None:
    seen = whole.get(change["seq"])
    if seen is not None and _canonical(seen) != _canonical(change):
        raise RecordFormatError(f"Two different changes carry seq {change['seq']}.")
    whole[change["seq"]] = change
