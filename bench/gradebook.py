"""`!export grades` for a large class, bot-side: the dispatcher and handler against a populated
SQLite, with a gateway that answers at once (so the upload of the file is not counted).

The class is written straight into SQLite, so migration 0010's triggers journal every row in
``record_log`` as if it waited to be written into its room; and this class has no rooms to write
it into (only the teacher's DM), so ~90,000 changes would wait for good and the first command after
each start would read them all (13–15 s here). A deployment writes each record into its room
when it is made (storage/record_journal.py): they are taken as written, as they would be by then.
``waiting=True`` (``--waiting``) leaves them waiting, to see that cost."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import statistics
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import commands
from commands.context import Services, Settings
from commands.dispatch import CommandEvent, Dispatcher
from storage.db import Database
from storage.repositories import Repositories

from .records import ClassRecord, insert_classes, insert_schools

TEACHER = "@teacher:a.test"
OPERATOR = "@it:a.test"
DM = "!teacher-dm:a.test"


class InstantRooms:
    """A RoomGateway that does nothing, instantly; uploads are counted."""

    def __init__(self):
        self.uploaded: list[int] = []

    async def create_room(self, **kwargs) -> str:
        return "!new:a.test"

    async def upload(self, data, filename, mimetype) -> str:
        self.uploaded.append(len(data))
        return f"mxc://a.test/{filename}"

    async def get_event(self, room_id, event_id):
        return None

    async def members(self, room_id) -> list[str]:
        """The teacher's DM holds just the two of them (the export checks it is private)."""
        return [TEACHER, "@ako:a.test"] if room_id == DM else []

    def __getattr__(self, name):
        async def nothing(*args, **kwargs):
            return None

        return nothing


class _Failures(logging.Handler):
    """Keeps the last line of the traceback the dispatcher logs for a failed command."""

    last = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.last = "".join(traceback.format_exception(*record.exc_info)).strip().splitlines()[-1]


class Clock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


async def export_grades(learners: int, assignments: int, runs: int = 3, workdir: Path | None = None, waiting: bool = False) -> dict:
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ako-gradebook-"))
    path = workdir / "gradebook.db"
    path.unlink(missing_ok=True)
    db = await Database.open(path)  # applies Ako's migrations
    await db.close()
    t0 = time.monotonic()
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA foreign_keys=ON")
        insert_schools(con, {"a.test": "Kura A", "b.test": "Kura B"}, [TEACHER], OPERATOR)
        people = [f"@learner{i:04d}:{'a' if i % 2 == 0 else 'b'}.test" for i in range(learners)]
        insert_classes(
            con,
            [ClassRecord("Big class", "BIG1", TEACHER, people, "a.test", rooms=[(DM, "dm", TEACHER)],
                         assignments=assignments, submitted=0.9, graded=0.9)],
        )
        con.execute("UPDATE rooms SET class_id = NULL WHERE room_id = ?", (DM,))
        journalled = con.execute("SELECT count(*) FROM record_log").fetchone()[0]
        if not waiting:  # written into their rooms, as a running deployment's are (above)
            con.execute("DELETE FROM record_log")
        con.commit()
    finally:
        con.close()
    populate = time.monotonic() - t0

    db = await Database.open(path)
    rooms = InstantRooms()
    settings = Settings(
        prefix="!", operators=frozenset({OPERATOR}), timezone="Pacific/Auckland", allow_guests=False,
        max_upload_mb=20, encrypt_work_rooms=False, bot_user_id="@ako:a.test",
    )
    sent = []

    async def enqueue(messages):
        sent.extend(messages)

    dispatcher = Dispatcher(commands.load(), Services(Repositories.over(db), rooms, Clock(), settings), enqueue)
    failures = _Failures()
    logging.getLogger("ako.commands").addHandler(failures)
    times = []
    try:
        for i in range(runs):
            before = len(sent)
            t = time.perf_counter()
            await dispatcher.handle(CommandEvent(TEACHER, DM, f"$export{i}", "export grades BIG1"))
            times.append(time.perf_counter() - t)
            files = [m.file for m in sent[before:] if m.file is not None]
            if not files:
                raise RuntimeError(f"!export grades sent no file: {[m.markdown for m in sent[before:]]} {failures.last}")
    finally:
        logging.getLogger("ako.commands").removeHandler(failures)
        await db.close()
    data = files[0][0]
    rows = data.decode().count("\n")
    return {
        "learners": learners,
        "assignments": assignments,
        "runs": runs,
        "median_s": round(statistics.median(times), 3),
        "first_s": round(times[0], 3),
        "max_s": round(max(times), 3),
        "csv_rows": rows,
        "csv_kb": round(len(data) / 1024, 1),
        "populate_s": round(populate, 1),
        "records_waiting": journalled if waiting else 0,
        "note": "dispatcher + handler + its transaction; the file's upload to the homeserver not included",
    }


if __name__ == "__main__":  # python -m bench.gradebook [LEARNERSxASSIGNMENTS] [--into bench/results.json]
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m bench.gradebook", description="The gradebook figure alone.")
    p.add_argument("size", nargs="?", default="1000x50", help="LEARNERSxASSIGNMENTS (default 1000x50)")
    p.add_argument("--into", type=Path, help="a results JSON whose gradebook entry to replace")
    p.add_argument("--waiting", action="store_true", help="leave the class's records waiting in record_log (see above)")
    a = p.parse_args()
    n_learners, n_assignments = (int(x) for x in a.size.lower().split("x"))
    result = asyncio.run(export_grades(n_learners, n_assignments, waiting=a.waiting))
    result["measured_at"] = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    print(result)
    if a.into:
        doc = json.loads(a.into.read_text())
        doc["gradebook"] = result
        a.into.write_text(json.dumps(doc, indent=2) + "\n")
