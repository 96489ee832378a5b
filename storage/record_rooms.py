"""Which room carries each record (issue 19): the people who may read a record today are the people
who may read the room it is written into, and no one else (SPEC §1, §2).

:func:`where` is pure: a table and a row give a *place*, a tuple the journal
(``storage.record_journal``) turns into a room id with a few look-ups:

- ``("staffroom",)``: the cluster's staffroom, read by the staff of every school: schools, their
  admins and staff, blocked servers, the cluster's rooms, subject rooms and their members, pinned
  identities (public keys), and schedule-ledger entries of an unknown kind.
- ``("class", class_id)``: the class room, read by the class's learners: members, posted assignments,
  the assignment counter, topics and their replies.
- ``("class staff", class_id)``: the class's staff room, teachers only: the class itself (its join
  code must not reach learners) and assignments not posted yet (their text must not reach learners
  before the publish time).
- ``("work", class_id, learner)`` / ``("work of assignment", assignment_id, learner)``: the learner's
  work room for that class: submissions, grades, returns, extensions.
- ``("class of assignment", assignment_id)`` / ``("class staff of assignment", assignment_id)``.
- ``("room", room_id)``: that very room: a room's own row, reminders, topics, the commands handled
  there, decryption notices given there. (A command answered only in another room, like a private
  command typed in the class room, has its mark written with the answer: the journal does that.)
- ``("topic", topic_id)``, ``("programme", programme_id)``, ``("programme use", use_id)``: the room
  of the topic, the programme's own room (its authors).
- ``("person", user_id)``: the person's direct-message room with Ako, else one of their work rooms;
  their settings (time zone, digest), read by nobody else.
- ``("ledger", key)``: a schedule-ledger entry goes where the reminder it records went:
  ``reminder.<id>.…`` the reminder's room, ``due.<assignment>.…`` the class room (``….<user key>``:
  that learner's work room), ``digest.<user key>.…`` the person's room.
"""

from __future__ import annotations

import hashlib

Place = tuple

STAFFROOM: Place = ("staffroom",)

_TO_STAFFROOM = {
    "schools", "school_admins", "staff", "blocked_servers", "cluster_rooms", "subject_rooms", "subject_members",
    "pinned_identities",
}
_TO_WORK_ROOM = {"submissions", "grades", "returns", "extensions"}


def user_key(user_id: str) -> str:
    """A user in a schedule-ledger key, as commands.timetable.user_key writes it (tested to agree)."""
    return hashlib.sha256(user_id.encode()).hexdigest()[:16]


def where(table: str, row: dict) -> Place:
    """The place a change to ``row`` of ``table`` is written (for a delete, the row as it was)."""
    if table in _TO_STAFFROOM:
        return STAFFROOM
    if table == "classes":
        return ("class staff", row["id"])
    if table in ("class_members", "assignment_counters"):
        return ("class", row["class_id"])
    if table == "assignments":
        return ("class", row["class_id"]) if row.get("published_at") else ("class staff", row["class_id"])
    if table in _TO_WORK_ROOM:
        return ("work of assignment", row["assignment_id"], row["learner"])
    if table in ("rooms", "reminders", "topics", "processed_events", "decryption_notices"):
        return ("room", row["room_id"])
    if table == "topic_replies":
        return ("topic", row["topic_id"])
    if table == "programmes":
        return ("programme", row["id"])
    if table in ("programme_authors", "programme_items", "programme_changes", "programme_uses"):
        return ("programme", row["programme_id"])
    if table == "programme_use_items":
        return ("programme use", row["use_id"])
    if table == "user_settings":
        return ("person", row["user_id"])
    if table == "schedule_ledger":
        return ("ledger", row["key"])
    raise KeyError(f"No room is planned for the records of table {table}; add it to storage/record_rooms.py.")
