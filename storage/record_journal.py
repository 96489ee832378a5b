"""Every change to a record reaches a room, in the transaction that makes it (issue 19, item 1).

Migration 0010's triggers write each change into ``record_log``. Just before COMMIT,
:meth:`RecordJournal.before_commit` takes the changes waiting there, finds each one's room
(``storage.record_rooms``), and queues them through the outbox in the same transaction: atomic with
the change (a rolled-back transaction sends nothing), never sent twice, never lost, encrypted
wherever the room is. Where it can, the record rides on a message Ako queued to that room in this
very transaction (one event fewer, no extra notification); otherwise it is an event of Ako's own type
``nz.ako.record``, which no client shows.

A change stays in ``record_log`` (and is tried again at the next commit) while its room is not known
yet (a class's rooms are made after the class) and, for a direct-message room, until Ako next sends a
message there: in a two-person encrypted room every event notifies with a sound
(``.m.rule.encrypted_room_one_to_one``), and a learner's phone must not ring for bookkeeping.

Privacy: an object carries changes about at most one set of people (the users in the columns
``storage.privacy.FORGOTTEN`` names), and its outbox row is noted as about them, so ``!forget``
redacts it with their other messages without taking anyone else's records with it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from . import record_format, record_rooms
from .privacy import FORGOTTEN

if TYPE_CHECKING:
    from .db import Database

# The tables _room reads to find where a change goes: a change waiting for its room waits for one of these.
PLACES = ("rooms", "cluster_rooms", "topics", "programmes", "programme_uses", "assignments", "class_members", "reminders", "user_settings")
DELETE_BATCH = 500  # changes taken out of record_log a statement at a time (SQLite may take only 999 parameters)

log = logging.getLogger("ako.records")

_PERSONAL: dict[str, set[str]] = defaultdict(set)  # table → the columns that say whose a row is
for _table, _column in FORGOTTEN:
    _PERSONAL[_table].add(_column)


def people(change_table: str, row: dict) -> frozenset[str]:
    """Whom a change is about, in the sense of ``!forget``."""
    return frozenset(row[c] for c in _PERSONAL.get(change_table, ()) if isinstance(row.get(c), str))


class RecordJournal:
    def __init__(self, db: Database):
        self.db = db
        self._queued: dict[int, dict] = {}  # messages queued in this transaction (storage.outbox tells), by outbox id
        self._seen_up_to = 0  # the highest seq examined by a commit that went through (0: examine all)
        self._waiting_rooms: set[str] = set()  # rooms where changes wait for a message to carry them
        self._ready: bool | None = None

    def rolled_back(self) -> None:
        """The transaction was undone, seqs with it: the next commit examines every waiting change."""
        self._seen_up_to = 0
        self._queued = {}

    async def begin(self) -> None:
        self._queued = {}

    def queued(
        self, outbox_id: int, room_id: str, event_type: str, content: dict, about: set[str], room: tuple[str | None, str] | None
    ) -> None:
        """A message went into the outbox in this transaction (the sender cannot have read it yet): it
        may carry records. Told by storage.outbox, so that no commit has to look for them; ``room``
        is the (owner, kind) of its room, as read then."""
        if event_type == "m.room.message" and record_format.CONTENT_KEY not in content:
            self._queued[outbox_id] = {
                "id": outbox_id, "room_id": room_id, "content": content, "about": set(about), "noted": set(about), "room": room,
            }

    def withdrawn(self, outbox_id: int) -> None:
        """A message queued in this transaction was dropped again (``!forget``): it carries nothing."""
        self._queued.pop(outbox_id, None)

    async def before_commit(self) -> None:
        """Write what waits in ``record_log`` into the rooms. A fault here never costs the classroom
        its change: it is logged, everything this step did is undone, and the records wait in
        ``record_log`` for the next commit."""
        if self._ready is None:  # a database kept at an older schema (tests of old migrations)
            self._ready = bool(await self.db.fetchval("SELECT 1 FROM sqlite_master WHERE name = 'record_log'"))
        top = await self.db.fetchval("SELECT MAX(seq) FROM record_log") if self._ready else None
        if top is None:
            return  # most commits (a message marked sent, a sync token) change no record
        await self.db.conn.execute("SAVEPOINT record_journal")
        try:
            await self._write_waiting(top)
        except Exception:
            log.exception("Could not write the records into their rooms; they wait in record_log for the next commit")
            await self.db.conn.execute("ROLLBACK TO record_journal")
        await self.db.conn.execute("RELEASE record_journal")

    async def _write_waiting(self, top: int) -> None:
        new_messages = list(self._queued.values())
        carriers_for_waiting = any(m["room_id"] in self._waiting_rooms for m in new_messages)
        if top <= self._seen_up_to and not carriers_for_waiting:
            return  # nothing new since the last try, and no message to carry what waits
        # What waits from earlier commits waits for a room to be made (a row of PLACES) or for a
        # message to its room: only then is it read again, so a commit costs what it changed, not
        # what waits (a class whose rooms are never made must not slow every command)
        read = "SELECT seq, table_name, op, key, row FROM record_log WHERE seq > ? OR op = ? ORDER BY seq"
        rows = await self.db.fetchall(read, (self._seen_up_to, record_format.DELETE))
        new_room = any(
            r["seq"] > self._seen_up_to and r["op"] == record_format.PUT and r["table_name"] in PLACES for r in rows
        )
        since = 0 if new_room or carriers_for_waiting else self._seen_up_to
        if since < self._seen_up_to:  # what waits is read again
            rows = await self.db.fetchall(read, (since, record_format.DELETE))
        changes = [(r["seq"], r["table_name"], r["op"], json.loads(r["key"]), json.loads(r["row"])) for r in rows]
        gone: dict[str, list[dict]] = defaultdict(list)  # rows deleted (in this or an earlier transaction)
        for _, table, op, _, row in changes:
            if op == record_format.DELETE:
                gone[table].append(row)
        changes = [c for c in changes if c[0] > since]  # older deletes only tell where rows were
        places: dict[tuple, str | None] = {}
        by_room: dict[str, list[tuple]] = defaultdict(list)
        replied_in = [m["room_id"] for m in new_messages]
        waiting_rooms: set[str] = set()
        for seq, table, op, key, row in changes:
            try:
                place = record_rooms.where(table, row)
            except KeyError as e:
                log.error("%s The change %s waits in record_log.", e, seq)
                continue
            if table == "processed_events" and op == record_format.DELETE:
                # a handled-mark let go (the retention sweep after 7 days, !forget): not written. A
                # rebuilt Ako keeping an old mark only never acts on that event again, which is its use
                by_room.setdefault("", []).append((record_format.delete(seq, table, key), frozenset()))
                continue
            if table == "processed_events" and op == record_format.PUT and replied_in and row["room_id"] not in replied_in:
                # a command answered elsewhere (a private one typed in the class room): its mark goes
                # with the answer, and the room it was typed in gets nothing from Ako but the redaction
                place = ("room", replied_in[0])
            if place not in places:
                places[place] = await self._room(place, gone)
            room = places[place]
            if room is None:
                continue
            change = record_format.put(seq, table, row) if op == record_format.PUT else record_format.delete(seq, table, key)
            by_room[room].append((change, people(table, row)))
        sent: list[int] = []
        sent += [change["seq"] for change, _ in by_room.pop("", [])]  # let go, not written
        for room, items in by_room.items():
            owner, kind, left = await self._owner(room, gone)
            if left:
                # Ako leaves every room whose row it deletes (a forgotten learner's, a blocked server's
                # DMs), and the rebuild reads only rooms Ako is in: nothing there counts any more
                sent += [change["seq"] for change, _ in items]
                continue
            messages = [m for m in new_messages if m["room_id"] == room]
            written = await self._write(room, owner, items, messages, waits=kind == "dm")
            sent += written
            if len(written) < len(items):
                waiting_rooms.add(room)
        for i in range(0, len(sent), DELETE_BATCH):  # SQLite takes at most 32,766 parameters a statement
            chunk = sent[i : i + DELETE_BATCH]
            await self.db.execute(f"DELETE FROM record_log WHERE seq IN ({','.join('?' * len(chunk))})", chunk)
        self._seen_up_to = top
        self._waiting_rooms = waiting_rooms if since == 0 else self._waiting_rooms | waiting_rooms

    async def _write(self, room: str, owner: str | None, items: list[tuple], messages: list[dict], waits: bool) -> list[int]:
        """Queue the room's changes: grouped by whom they are about, each group on a message about no
        one else when one fits, else in events of their own (``waits``: else not yet). The seqs written."""
        groups: dict[frozenset, list[tuple]] = defaultdict(list)
        for change, about in items:
            groups[about - {owner}].append((change, about))
        # staff and school admins cannot be forgotten (``!forget`` refuses them): a message naming a
        # teacher ("your grade, from @t") can carry a learner's records
        unforgettable: set[str] = set()
        if any(m["about"] - {owner} for m in messages):
            unforgettable = {u for (u,) in await self.db.fetchall("SELECT user_id FROM staff UNION SELECT user_id FROM school_admins")}
        for m in messages:  # a name Ako holds nothing about (help's "@user:server") has nothing to forget
            m["about"] = {u for u in m["about"] if u == owner or await self._holds_records_about(u)}
        now = datetime.now(timezone.utc)
        written: list[int] = []
        for about, group in groups.items():
            changes = [c for c, _ in group]
            objects = record_format.split(changes)
            carriers = []
            for obj in objects:
                # a message about no one else: it is now about these people too, and goes with them
                carriers.append(next(
                    (m for m in messages if not m.get("taken") and m["about"] - {owner} - unforgettable <= about
                     and record_format.fits(m["content"], obj)),
                    None,
                ))
                if carriers[-1] is not None:
                    carriers[-1]["taken"] = True
            if waits and None in carriers:
                for m in carriers:  # all of the group or none: it waits whole for a message that carries it
                    if m is not None:
                        m["taken"] = False
                continue
            written += [c["seq"] for c in changes]
            for obj, carrier in zip(objects, carriers):
                if carrier is not None:
                    carrier["content"][record_format.CONTENT_KEY] = obj
                    await self.db.execute(
                        "UPDATE outbox SET content = ? WHERE id = ?",
                        (json.dumps(carrier["content"], ensure_ascii=False), carrier["id"]),
                    )
                    await self._note(carrier["id"], about | ({owner} if owner else set()), carrier["noted"])
                    continue
                txn_id = f"ako.record.{uuid.uuid4().hex}"
                await self.db.execute(
                    "INSERT INTO outbox (txn_id, room_id, event_type, content, created_at) VALUES (?, ?, ?, ?, ?)",
                    (txn_id, room, record_format.EVENT_TYPE, json.dumps(record_format.event_content(obj), ensure_ascii=False),
                     now.isoformat()),
                )
                outbox_id = await self.db.fetchval("SELECT id FROM outbox WHERE txn_id = ?", (txn_id,))
                await self._note(outbox_id, about | ({owner} if owner else set()))
        return written

    async def _holds_records_about(self, user_id: str) -> bool:
        """Whether any row ``!forget`` would delete names this person."""
        union = " UNION ALL ".join(f'SELECT 1 FROM "{table}" WHERE "{column}" = ?' for table, column in FORGOTTEN)
        return await self.db.fetchval(f"SELECT EXISTS ({union})", (user_id,) * len(FORGOTTEN)) == 1

    async def _note(self, outbox_id: int, users: set[str], noted: set[str] = frozenset()) -> None:
        """The message carries records about these people: ``!forget`` redacts it with theirs
        (``noted``: already noted as about them, when it was queued)."""
        for user in users - noted:
            await self.db.execute("INSERT OR IGNORE INTO outbox_about (user_id, outbox_id) VALUES (?, ?)", (user, outbox_id))

    # --- places to rooms

    async def _one(self, sql: str, params: tuple, gone_rows: list[dict], match: dict, column: str):
        found = await self.db.fetchval(sql, params)
        if found is not None:
            return found
        for row in reversed(gone_rows):
            if all(row.get(k) == v for k, v in match.items()):
                return row.get(column)
        return None

    async def _class_room(self, class_id, kind: str, gone) -> str | None:
        return await self._one(
            "SELECT room_id FROM rooms WHERE class_id = ? AND kind = ? ORDER BY created_at LIMIT 1", (class_id, kind),
            gone["rooms"], {"class_id": class_id, "kind": kind}, "room_id",
        )

    async def _work_room(self, class_id, learner, gone) -> str | None:
        return await self._one(
            "SELECT room_id FROM rooms WHERE class_id = ? AND kind = 'work' AND owner = ?", (class_id, learner),
            gone["rooms"], {"class_id": class_id, "kind": "work", "owner": learner}, "room_id",
        )

    async def _class_of_assignment(self, assignment_id, gone):
        return await self._one(
            "SELECT class_id FROM assignments WHERE id = ?", (assignment_id,), gone["assignments"], {"id": assignment_id}, "class_id"
        )

    async def _room(self, place: tuple, gone) -> str | None:
        what = place[0]
        if what == "staffroom":
            return await self._one(
                "SELECT room_id FROM cluster_rooms WHERE kind = 'staffroom'", (), gone["cluster_rooms"], {"kind": "staffroom"}, "room_id"
            )
        if what == "room":
            return place[1]
        if what == "class":
            return await self._class_room(place[1], "class", gone)
        if what == "class staff":
            return await self._class_room(place[1], "staff", gone)
        if what == "work":
            return await self._work_room(place[1], place[2], gone)
        if what in ("work of assignment", "class of assignment", "class staff of assignment"):
            class_id = await self._class_of_assignment(place[1], gone)
            if class_id is None:
                return None
            if what == "work of assignment":
                return await self._work_room(class_id, place[2], gone)
            return await self._class_room(class_id, "class" if what == "class of assignment" else "staff", gone)
        if what == "topic":
            return await self._one("SELECT room_id FROM topics WHERE id = ?", (place[1],), gone["topics"], {"id": place[1]}, "room_id")
        if what == "programme":
            return await self._one(
                "SELECT room_id FROM programmes WHERE id = ?", (place[1],), gone["programmes"], {"id": place[1]}, "room_id"
            )
        if what == "programme use":
            programme = await self._one(
                "SELECT programme_id FROM programme_uses WHERE id = ?", (place[1],), gone["programme_uses"], {"id": place[1]}, "programme_id"
            )
            return None if programme is None else await self._room(("programme", programme), gone)
        if what == "person":
            return await self._person(place[1], gone)
        if what == "ledger":
            return await self._ledger(place[1], gone)
        return None

    async def _person(self, user_id: str, gone) -> str | None:
        room = await self._one(
            "SELECT room_id FROM rooms WHERE kind = 'dm' AND owner = ? ORDER BY created_at LIMIT 1", (user_id,),
            gone["rooms"], {"kind": "dm", "owner": user_id}, "room_id",
        )
        return room or await self._one(
            "SELECT room_id FROM rooms WHERE kind = 'work' AND owner = ? ORDER BY created_at LIMIT 1", (user_id,),
            gone["rooms"], {"kind": "work", "owner": user_id}, "room_id",
        )

    async def _ledger(self, key: str, gone) -> str | None:
        parts = key.split(".")
        if parts[0] == "reminder" and len(parts) >= 2 and parts[1].isdigit():
            rid = int(parts[1])
            found = await self._one("SELECT room_id FROM reminders WHERE id = ?", (rid,), gone["reminders"], {"id": rid}, "room_id")
            if found:
                return found
        if parts[0] == "due" and len(parts) >= 2 and parts[1].isdigit():
            aid = int(parts[1])
            class_id = await self._class_of_assignment(aid, gone)
            if class_id is not None and len(parts) >= 5:
                members = [r[0] for r in await self.db.fetchall("SELECT user_id FROM class_members WHERE class_id = ?", (class_id,))]
                members += [r.get("user_id") for r in gone["class_members"] if r.get("class_id") == class_id]
                for learner in members:
                    if learner and record_rooms.user_key(learner) == parts[4]:
                        return await self._work_room(class_id, learner, gone)
                return await self._class_room(class_id, "staff", gone)
            if class_id is not None:
                return await self._class_room(class_id, "class", gone)
        if parts[0] == "digest" and len(parts) >= 2:
            users = [r[0] for r in await self.db.fetchall("SELECT user_id FROM user_settings")]
            users += [r.get("user_id") for r in gone["user_settings"]]
            for user in users:
                if user and record_rooms.user_key(user) == parts[1]:
                    found = await self._person(user, gone)
                    if found:
                        return found
        # of a kind not known here, or of a reminder, assignment or person no longer there: the key
        # names no one (user keys are hashes), and the staff keep it
        return await self._room(record_rooms.STAFFROOM, gone)

    async def _owner(self, room_id: str, gone) -> tuple[str | None, str | None, bool]:
        """The room's owner and kind, and whether its row was deleted (Ako is leaving it)."""
        if not any(r.get("room_id") == room_id for r in gone["rooms"]):  # as read when a message was queued there
            known = next((m["room"] for m in self._queued.values() if m["room_id"] == room_id and m["room"] is not None), None)
            if known is not None:  # a room's row is never changed, only made or deleted
                return known[0], known[1], False
        row = await self.db.fetchone("SELECT owner, kind FROM rooms WHERE room_id = ?", (room_id,))
        if row is not None:
            return row["owner"], row["kind"], False
        for r in reversed(gone["rooms"]):
            if r.get("room_id") == room_id:
                return r.get("owner"), r.get("kind"), True
        return None, None, False
